import { RpcWebSocketClientAdapter } from '@deepkit/rpc';
import WebSocket from 'ws';
import { Observable } from 'rxjs';
import { Peer } from '../peer';
import { PeerClient } from '../peer/internal';
import { BrokerApi } from '../shared';

/**
 * A crowd of peers online on one broker, in its own process (the harness measures the broker and joiners, not the
 * crowd): `node crowd.ts <url> <prefix> <count> <mode>`. Prints `ready` once all are registered and following.
 * Modes:
 * - `everyone`: light clients that register and follow every peer's presence one frame per change, as the SDK did
 *   before presence by interest (`presence()`: each join anywhere costs the broker a frame per crowd member);
 * - `interest`: light clients that register and follow batched presence by interest, as the SDK does now;
 * - `sdk`: SDK peers (default options, `:memory:` storage), reconnecting on their own: for the reconnect storm.
 * On stdin: `count` answers how many are registered now (`{"registered": n}`); stdin closed: exits.
 */
async function main(): Promise<void> {
    const [url, prefix, countText, mode] = process.argv.slice(2);
    const count = Number(countText);
    const streams: Observable<unknown>[] = [];
    const sdkPeers: Peer[] = [];
    const clients: PeerClient[] = [];
    const join = async (index: number) => {
        const id = `${prefix}${index}`;
        if (mode === 'sdk') {
            sdkPeers.push(await Peer.connect({ url, id, reconnect: { initialDelayMs: 200, maxDelayMs: 5000 }, connectTimeoutMs: 120_000 }));
            return;
        }
        const client = new PeerClient(new RpcWebSocketClientAdapter(url, WebSocket as never), PeerClient.createPeerKernel());
        clients.push(client);
        const broker = client.controller<BrokerApi>(BrokerApi.path, { timeout: 120_000 });
        await broker.register(id);
        // Deepkit holds a remote Observable only weakly: kept, so the subscription lives.
        const stream: Observable<unknown> = mode === 'everyone' ? await broker.presence(false) : await broker.presenceBatches(false);
        stream.subscribe(() => undefined);
        streams.push(stream);
    };
    // 50 at a time: apps starting together, not one connection storm.
    for (let start = 0; start < count; start += 50) {
        await Promise.all(Array.from({ length: Math.min(50, count - start) }, (_, offset) => join(start + offset)));
    }
    process.stdout.write('ready\n');
    let input = '';
    process.stdin.on('data', chunk => {
        input += chunk;
        let newline: number;
        while ((newline = input.indexOf('\n')) >= 0) {
            const command = input.slice(0, newline).trim();
            input = input.slice(newline + 1);
            if (command === 'count') {
                const registered = mode === 'sdk' ? sdkPeers.filter(peer => peer.state === 'registered').length : clients.length;
                process.stdout.write(JSON.stringify({ registered }) + '\n');
            }
        }
    });
    process.stdin.on('end', () => void (async () => {
        await Promise.allSettled(sdkPeers.map(peer => peer.close()));
        for (const client of clients) void client.disconnect();
        process.exit(0);
    })());
}

void main();
