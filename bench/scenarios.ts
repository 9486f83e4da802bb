import { createHash, randomBytes } from 'crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { RpcWebSocketClientAdapter } from '@deepkit/rpc';
import WebSocket from 'ws';
import { Peer, PeerClient } from '../peer';
import { BrokerApi } from '../shared';
import { BenchSystem, CallPair, EchoApi, EchoController, RelayClient, ServerProcess } from './systems';

export interface Sizes {
    warmup: number;
    latencyCalls: number;
    throughputCalls: number;
    inFlight: number;
    fileBytes: number;
    fanOut: number;
    idlePeers: number;
}

export const fullSizes: Sizes = { warmup: 500, latencyCalls: 3000, throughputCalls: 30000, inFlight: 64, fileBytes: 64 * 1024 * 1024, fanOut: 1000, idlePeers: 10000 };
export const quickSizes: Sizes = { warmup: 20, latencyCalls: 100, throughputCalls: 500, inFlight: 64, fileBytes: 2 * 1024 * 1024, fanOut: 20, idlePeers: 100 };

export interface Measurement {
    scenario: string;
    system: string;
    metric: string;
    unit: string;
    /** `null` when the system never finished (e.g. hangs). */
    value: number | null;
    /** Bigger is better (throughput) or smaller is better (latency). */
    better: 'higher' | 'lower';
    note?: string;
}

const payload = () => randomBytes(64);

function percentile(sorted: number[], p: number): number {
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function withServer<T>(script: string, work: (server: ServerProcess) => Promise<T>): Promise<T> {
    const server = await ServerProcess.start(script);
    try {
        return await work(server);
    } finally {
        await server.stop();
    }
}

async function withPair<T>(system: BenchSystem, port: number, work: (pair: CallPair) => Promise<T>): Promise<T> {
    const pair = await system.pair(port);
    try {
        return await work(pair);
    } finally {
        await pair.close();
    }
}

/** 1. Peer call, small payload: sequential latency, then throughput with `inFlight` calls outstanding. */
export async function peerCall(system: BenchSystem, sizes: Sizes): Promise<Measurement[]> {
    return withServer(system.server, server => withPair(system, server.port, async pair => {
        for (let i = 0; i < sizes.warmup; i++) await pair.call(payload());
        const latencies: number[] = [];
        for (let i = 0; i < sizes.latencyCalls; i++) {
            const started = performance.now();
            await pair.call(payload());
            latencies.push(performance.now() - started);
        }
        latencies.sort((a, b) => a - b);

        let issued = 0;
        const started = performance.now();
        await Promise.all(Array.from({ length: sizes.inFlight }, async () => {
            while (issued < sizes.throughputCalls) {
                issued++;
                await pair.call(payload());
            }
        }));
        const seconds = (performance.now() - started) / 1000;
        const scenario = 'peer call';
        return [
            { scenario, system: system.name, metric: 'p50 latency', unit: 'ms', value: percentile(latencies, 0.5), better: 'lower' },
            { scenario, system: system.name, metric: 'p99 latency', unit: 'ms', value: percentile(latencies, 0.99), better: 'lower' },
            { scenario, system: system.name, metric: `throughput (${sizes.inFlight} in flight)`, unit: 'calls/s', value: sizes.throughputCalls / seconds, better: 'higher' },
        ];
    }));
}

/** 2. A file through the broker (Switchboard's verified download) vs the same bytes over the raw ws relay. */
export async function fileTransfer(sizes: Sizes): Promise<Measurement[]> {
    const directory = mkdtempSync(join(tmpdir(), 'switchboard-bench-'));
    const content = randomBytes(sizes.fileBytes);
    const expected = createHash('sha256').update(content).digest('hex');
    const source = join(directory, 'file.bin');
    writeFileSync(source, content);
    const megabytes = sizes.fileBytes / 1024 / 1024;
    const scenario = `file transfer (${megabytes} MiB, SHA-256 verified)`;
    try {
        const switchboardRate = await withServer('switchboard.ts', async server => {
            const url = `ws://127.0.0.1:${server.port}`;
            const bob = await Peer.connect({ url, id: 'bob' });
            const alice = await Peer.connect({ url, id: 'alice' });
            try {
                const shared = await bob.files.share(source);
                const started = performance.now();
                await alice.files.fetch('bob', shared.id, join(directory, 'copy.bin'));
                return megabytes / ((performance.now() - started) / 1000);
            } finally {
                await alice.close();
                await bob.close();
            }
        });
        const relayRate = await withServer('ws-relay.ts', async server => {
            const receiver = await RelayClient.connect(server.port, 'bob');
            const sender = await RelayClient.connect(server.port, 'alice');
            try {
                const hash = createHash('sha256');
                let received = 0;
                const done = new Promise<string>(resolve => receiver.onFrame = (from, chunk) => {
                    hash.update(chunk);
                    received += chunk.length;
                    if (received === content.length) resolve(hash.digest('hex'));
                });
                const started = performance.now();
                for (let offset = 0; offset < content.length; offset += 64 * 1024) {
                    sender.send('bob', content.subarray(offset, offset + 64 * 1024));
                    while (sender.socket.bufferedAmount > 4 * 1024 * 1024) await new Promise(resolve => setImmediate(resolve));
                }
                if (await done !== expected) throw new Error('raw relay: checksum mismatch');
                return megabytes / ((performance.now() - started) / 1000);
            } finally {
                sender.close();
                receiver.close();
            }
        });
        return [
            { scenario, system: 'Switchboard', metric: 'rate', unit: 'MB/s', value: switchboardRate, better: 'higher' },
            { scenario, system: 'raw ws relay', metric: 'rate', unit: 'MB/s', value: relayRate, better: 'higher' },
        ];
    } finally {
        rmSync(directory, { recursive: true, force: true });
    }
}

/** A lightweight registered peer serving the echo controller (no SQLite: many of them share one process). */
async function echoPeer(url: string, id: string): Promise<PeerClient> {
    const client = new PeerClient(new RpcWebSocketClientAdapter(url, WebSocket as any), PeerClient.createPeerKernel());
    client.servedPeerId = id;
    client.peerKernel!.registerController(EchoController, 'bench/echo');
    await client.controller<BrokerApi>(BrokerApi.path).register(id);
    return client;
}

/** 3. One message to N peers: time until the last one has it (its answer is back). */
export async function fanOut(sizes: Sizes): Promise<Measurement[]> {
    const scenario = `fan-out to ${sizes.fanOut} peers`;
    const switchboardMs = await withServer('switchboard.ts', async server => {
        const url = `ws://127.0.0.1:${server.port}`;
        const receivers = await Promise.all(Array.from({ length: sizes.fanOut }, (_, i) => echoPeer(url, `r${i}`)));
        const sender = await Peer.connect({ url, id: 'sender' });
        try {
            const proxies = receivers.map((_, i) => sender.to(`r${i}`).controller<EchoApi>('bench/echo'));
            await Promise.all(proxies.map(proxy => proxy.echo(payload())));
            const started = performance.now();
            await Promise.all(proxies.map(proxy => proxy.echo(payload())));
            return performance.now() - started;
        } finally {
            await sender.close();
            await Promise.all(receivers.map(r => r.disconnect()));
        }
    });
    const relayMs = await withServer('ws-relay.ts', async server => {
        const receivers = await Promise.all(Array.from({ length: sizes.fanOut }, (_, i) => RelayClient.connect(server.port, `r${i}`).then(r => r.echo())));
        const sender = await RelayClient.connect(server.port, 'sender');
        try {
            await Promise.all(receivers.map(r => sender.request(r.id, payload())));
            const started = performance.now();
            await Promise.all(receivers.map(r => sender.request(r.id, payload())));
            return performance.now() - started;
        } finally {
            sender.close();
            receivers.forEach(r => r.close());
        }
    });
    return [
        { scenario, system: 'Switchboard', metric: 'time to last', unit: 'ms', value: switchboardMs, better: 'lower' },
        { scenario, system: 'raw ws relay', metric: 'time to last', unit: 'ms', value: relayMs, better: 'lower' },
    ];
}

/** 4. N idle registered peers on one broker: broker memory per peer, registration rate. */
export async function idlePeers(sizes: Sizes): Promise<Measurement[]> {
    const scenario = `${sizes.idlePeers} idle peers`;
    return withServer('switchboard.ts', async server => {
        const url = `ws://127.0.0.1:${server.port}`;
        const before = await server.rss();
        const peers: PeerClient[] = [];
        const started = performance.now();
        for (let batch = 0; batch < sizes.idlePeers; batch += 100) {
            const count = Math.min(100, sizes.idlePeers - batch);
            peers.push(...await Promise.all(Array.from({ length: count }, (_, i) => echoPeer(url, `idle${batch + i}`))));
        }
        const seconds = (performance.now() - started) / 1000;
        const after = await server.rss();
        await Promise.all(peers.map(p => p.disconnect()));
        return [
            { scenario, system: 'Switchboard', metric: 'broker RSS per peer', unit: 'KiB', value: (after - before) / 1024 / sizes.idlePeers, better: 'lower' },
            { scenario, system: 'Switchboard', metric: 'registration rate', unit: 'peers/s', value: sizes.idlePeers / seconds, better: 'higher' },
        ];
    });
}

/** 5. A call to an offline peer: time until it errors. Stock Deepkit never answers; we stop waiting after 3 s. */
export async function failFast(): Promise<Measurement[]> {
    const scenario = 'fail-fast (call to an offline peer)';
    const giveUpMs = 3000;
    const measure = async (call: () => Promise<unknown>): Promise<number | null> => {
        const started = performance.now();
        const outcome = await Promise.race([
            call().then(() => 'answered', () => 'failed'),
            new Promise(resolve => setTimeout(() => resolve('hangs'), giveUpMs)),
        ]);
        return outcome === 'hangs' ? null : performance.now() - started;
    };
    const switchboardMs = await withServer('switchboard.ts', async server => {
        const alice = await Peer.connect({ url: `ws://127.0.0.1:${server.port}`, id: 'alice' });
        try {
            await alice.to('ghost').controller<EchoApi>('bench/echo').echo(payload()).catch(() => undefined);
            return await measure(() => alice.to('ghost').controller<EchoApi>('bench/echo', { timeout: 60_000 }).echo(payload()));
        } finally {
            await alice.close();
        }
    });
    const stockMs = await withServer('deepkit-stock.ts', async server => {
        const { RpcClient } = await import('@deepkit/rpc');
        const alice = new RpcClient(new RpcWebSocketClientAdapter(`ws://127.0.0.1:${server.port}`, WebSocket as any));
        try {
            return await measure(() => alice.peer('ghost').controller<EchoApi>('bench/echo').echo(payload()));
        } finally {
            await alice.disconnect();
        }
    });
    return [
        { scenario, system: 'Switchboard', metric: 'time to error', unit: 'ms', value: switchboardMs, better: 'lower' },
        { scenario, system: 'Deepkit (stock P2P)', metric: 'time to error', unit: 'ms', value: stockMs, better: 'lower', note: stockMs === null ? `hangs (no answer in ${giveUpMs} ms)` : undefined },
    ];
}
