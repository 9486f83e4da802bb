import { rpc, RpcTypes } from '@deepkit/rpc';
import WebSocket from 'ws';
import { declaredFrameSize, frameType } from '@switchboard/protocol/internal';
import { startSwitchboard } from '../../testing/test-kit';

/** A `ws` socket that notes the type of every frame the peer writes (a message may hold several). */
function countingSocket(types: number[]): typeof WebSocket {
    return class extends WebSocket {
        override send(data: any, ...rest: any[]): void {
            const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
            for (let offset = 0; offset < bytes.byteLength;) {
                const size = declaredFrameSize(bytes, offset);
                types.push(frameType(bytes.subarray(offset, offset + size)));
                offset += size;
            }
            (super.send as (...args: unknown[]) => void)(data, ...rest);
        }
    } as typeof WebSocket;
}

@rpc.controller('app/joined')
class JoinedController {
    @rpc.action()
    hello(): string {
        return 'hello';
    }
}

describe('joining the broker', () => {
    it('asks the broker for no action types: the SDK knows the broker API', async () => {
        await using kit = await startSwitchboard({ peers: ['bob'] });
        kit.peer('bob').expose(JoinedController, 'app/joined');
        const types: number[] = [];
        const alice = await kit.addPeer({ id: 'alice', presence: false, webSocket: countingSocket(types) });
        expect(alice.state).toBe('registered');
        expect(types.filter(type => type === RpcTypes.Action).length).toBeGreaterThan(0);
        expect(types.filter(type => type === RpcTypes.ActionType)).toEqual([]);
        // Another peer's actions are not known here: their types are asked for once, then reused.
        const joined = alice.to('bob').controller<{ hello(): Promise<string> }>('app/joined');
        expect(await joined.hello()).toBe('hello');
        expect(await joined.hello()).toBe('hello');
        expect(types.filter(type => type === RpcTypes.ActionType).length).toBe(1);
    });

    it('registers and announces in one call to the broker', async () => {
        await using kit = await startSwitchboard();
        const types: number[] = [];
        let beforeRegistered = -1;
        const alice = await kit.addPeer({ id: 'alice', presence: false, capabilities: ['clock'], webSocket: countingSocket(types) }, peer => {
            peer.state$.subscribe(state => {
                if (state === 'registered' && beforeRegistered < 0) beforeRegistered = types.length;
            });
        });
        expect(types.slice(0, beforeRegistered).filter(type => type === RpcTypes.Action)).toHaveLength(1);
        expect((await alice.broker.getPeer('alice')).capabilities).toContain('clock');
    });
});
