/**
 * A peer in a process of its own, for tests that feed it hostile frames: if a frame escapes into the WebSocket's
 * listener the process ends, as an app embedding the SDK would. Usage: hostile-broker-peer.ts <url> <maxCallers>.
 */
import { rpc, RpcWebSocketClientAdapter } from '@deepkit/rpc';
import WebSocket from 'ws';
import { CallerContext } from '../../peer/caller-context';
import { PeerClient } from '../../peer/peer-client';

const [url, maxCallers] = process.argv.slice(2);
const client = new PeerClient(new RpcWebSocketClientAdapter(url, WebSocket as any), PeerClient.createPeerKernel(), { maxCallers: Number(maxCallers) });
const dropped: Record<string, number> = {};
client.inbound?.dropped$.subscribe(frame => {
    dropped[frame.reason] = (dropped[frame.reason] ?? 0) + 1;
    console.log('dropped', frame.reason, frame.detail.slice(0, 200));
});

@rpc.controller('test/probe')
class ProbeController {
    constructor(protected caller: CallerContext) {
    }

    @rpc.action()
    whoCalls(): { peerId?: string, session: string } {
        return { peerId: this.caller.peerId, session: this.caller.session };
    }

    @rpc.action()
    state(): { dropped: Record<string, number>, callers: number, callersEvicted: number } {
        return { dropped, callers: client.callerCount, callersEvicted: client.callersEvicted };
    }
}

client.servedPeerId = 'bob';
client.peerKernel!.registerController(ProbeController, 'test/probe');
client.connect().then(() => console.log('peer connected'), error => {
    console.error('peer could not connect', error);
    process.exit(2);
});
