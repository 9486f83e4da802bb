import { createHash, randomBytes } from 'crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { RpcWebSocketClientAdapter } from '@deepkit/rpc';
import WebSocket from 'ws';
import { Peer } from '../peer';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import type { Msg } from '@nats-io/nats-core';
import { NatsServerMissing, RunningNatsServer, startNatsServer } from '../examples/cluster/nats-server';
import { BenchSystem, CallPair, EchoApi, EchoController, RelayClient, ServerProcess } from './systems';

export interface Sizes {
    warmup: number;
    latencyCalls: number;
    throughputCalls: number;
    inFlight: number;
    fileBytes: number;
    /** Transfers per system; the median counts. */
    fileRounds: number;
    fanOut: number;
    idlePeers: number;
}

export const fullSizes: Sizes = { warmup: 500, latencyCalls: 3000, throughputCalls: 30000, inFlight: 64, fileBytes: 64 * 1024 * 1024, fileRounds: 5, fanOut: 1000, idlePeers: 1000 };
export const quickSizes: Sizes = { warmup: 20, latencyCalls: 100, throughputCalls: 500, inFlight: 64, fileBytes: 2 * 1024 * 1024, fileRounds: 1, fanOut: 20, idlePeers: 20 };

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

/** Random 64-byte payloads, made up front: a fresh randomBytes() per call cost the harness 6% of its CPU. */
const payloads = Array.from({ length: 256 }, () => randomBytes(64));
let nextPayload = 0;
const payload = () => payloads[nextPayload++ & 255];

function percentile(sorted: number[], p: number): number {
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function withServer<T>(script: string, work: (server: ServerProcess) => Promise<T>, env: Record<string, string> = {}): Promise<T> {
    const server = await ServerProcess.start(script, env);
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

/** Warm-up, then `latencyCalls` calls one after another: their latencies in ms, sorted. */
async function latencyRun(call: (payload: Uint8Array) => Promise<unknown>, sizes: Sizes): Promise<number[]> {
    for (let i = 0; i < sizes.warmup; i++) await call(payload());
    const latencies: number[] = [];
    for (let i = 0; i < sizes.latencyCalls; i++) {
        const started = performance.now();
        await call(payload());
        latencies.push(performance.now() - started);
    }
    return latencies.sort((a, b) => a - b);
}

/** `throughputCalls` calls with `inFlight` outstanding: calls per second. */
export async function throughputRun(call: (payload: Uint8Array) => Promise<unknown>, sizes: Sizes): Promise<number> {
    let issued = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: sizes.inFlight }, async () => {
        while (issued < sizes.throughputCalls) {
            issued++;
            await call(payload());
        }
    }));
    return sizes.throughputCalls / ((performance.now() - started) / 1000);
}

/** p50, p99 and throughput of one system in one scenario. */
export async function callMeasurements(scenario: string, system: string, call: (payload: Uint8Array) => Promise<unknown>, sizes: Sizes): Promise<Measurement[]> {
    const latencies = await latencyRun(call, sizes);
    const callsPerSecond = await throughputRun(call, sizes);
    return [
        { scenario, system, metric: 'p50 latency', unit: 'ms', value: percentile(latencies, 0.5), better: 'lower' },
        { scenario, system, metric: 'p99 latency', unit: 'ms', value: percentile(latencies, 0.99), better: 'lower' },
        { scenario, system, metric: `throughput (${sizes.inFlight} in flight)`, unit: 'calls/s', value: callsPerSecond, better: 'higher' },
    ];
}

/** 1. Peer call, small payload: sequential latency, then throughput with `inFlight` calls outstanding. */
export async function peerCall(system: BenchSystem, sizes: Sizes): Promise<Measurement[]> {
    return withServer(system.server, server => withPair(system, server.port, async pair => {
        const latencies = await latencyRun(payload => pair.call(payload), sizes);
        const cpuBefore = server.cpuSeconds();
        const callsPerSecond = await throughputRun(payload => pair.call(payload), sizes);
        const cpuAfter = server.cpuSeconds();
        const scenario = 'peer call';
        const measurements: Measurement[] = [
            { scenario, system: system.name, metric: 'p50 latency', unit: 'ms', value: percentile(latencies, 0.5), better: 'lower' },
            { scenario, system: system.name, metric: 'p99 latency', unit: 'ms', value: percentile(latencies, 0.99), better: 'lower' },
            { scenario, system: system.name, metric: `throughput (${sizes.inFlight} in flight)`, unit: 'calls/s', value: callsPerSecond, better: 'higher' },
        ];
        // What routing costs the server, apart from how fast the clients are: CPU time during the throughput run.
        if (cpuBefore !== undefined && cpuAfter !== undefined) {
            const perTenThousand = (cpuAfter - cpuBefore) * 1000 * 10_000 / sizes.throughputCalls;
            measurements.push({ scenario, system: system.name, metric: 'server CPU per 10,000 calls', unit: 'ms', value: perTenThousand, better: 'lower' });
        }
        return measurements;
    }));
}

/**
 * 2. A file through the broker (Switchboard's verified download, disk to disk) vs the same bytes over the raw ws
 * relay. Both servers run side by side and the systems take turns, `fileRounds` times each; the median round counts,
 * so a burst of load on a shared machine hits both and moves the ratio less.
 */
export async function fileTransfer(sizes: Sizes): Promise<Measurement[]> {
    const directory = mkdtempSync(join(tmpdir(), 'switchboard-bench-'));
    const content = randomBytes(sizes.fileBytes);
    const expected = createHash('sha256').update(content).digest('hex');
    const source = join(directory, 'file.bin');
    writeFileSync(source, content);
    const megabytes = sizes.fileBytes / 1024 / 1024;
    const scenario = `file transfer (${megabytes} MiB, SHA-256 verified)`;
    try {
        return await withServer('switchboard.ts', switchboardServer => withServer('ws-relay.ts', async relayServer => {
            const url = `ws://127.0.0.1:${switchboardServer.port}`;
            const bob = await Peer.connect({ url, id: 'bob' });
            const alice = await Peer.connect({ url, id: 'alice' });
            // Sealing is on by default between SDK peers; the plain path (checkpoints, one hash pass a side) is timed too.
            const plainAlice = await Peer.connect({ url, id: 'alice-plain', sealing: false });
            const receiver = await RelayClient.connect(relayServer.port, 'bob');
            const sender = await RelayClient.connect(relayServer.port, 'alice');
            try {
                const shared = await bob.files.share(source);
                const copy = join(directory, 'copy.bin');
                const switchboardRound = async (downloader = alice) => {
                    const started = performance.now();
                    await downloader.files.fetch('bob', shared.id, copy);
                    const seconds = (performance.now() - started) / 1000;
                    // Without the copy the next round downloads again instead of copying from the local cache.
                    rmSync(copy);
                    return megabytes / seconds;
                };
                const relayRound = async () => {
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
                };
                const switchboardRates: number[] = [];
                const plainRates: number[] = [];
                const relayRates: number[] = [];
                for (let round = 0; round < sizes.fileRounds; round++) {
                    switchboardRates.push(await switchboardRound());
                    plainRates.push(await switchboardRound(plainAlice));
                    relayRates.push(await relayRound());
                }
                return [
                    { scenario, system: 'Switchboard', metric: 'rate', unit: 'MB/s', value: median(switchboardRates), better: 'higher' },
                    { scenario, system: 'Switchboard, sealing off', metric: 'rate', unit: 'MB/s', value: median(plainRates), better: 'higher' },
                    { scenario, system: 'raw ws relay', metric: 'rate', unit: 'MB/s', value: median(relayRates), better: 'higher' },
                ];
            } finally {
                sender.close();
                receiver.close();
                await plainAlice.close();
                await alice.close();
                await bob.close();
            }
        }));
    } finally {
        rmSync(directory, { recursive: true, force: true });
    }
}

/** Timed rounds of a fan-out: one round on two shared cores swings by 3× with the machine's load. */
const FAN_OUT_ROUNDS = 7;

/**
 * Untimed rounds first, the same for every system: the first call from a new caller sets up its serving context in
 * each of the 1,000 receivers, and the next two still run colder code (measured: 326, 170, then 50–100 ms).
 */
async function warmUp(round: () => Promise<unknown>): Promise<void> {
    for (let index = 0; index < 3; index++) await round();
}

/** The median wall time of FAN_OUT_ROUNDS runs of `round`, in milliseconds. */
async function medianRound(round: () => Promise<unknown>): Promise<number> {
    const times: number[] = [];
    for (let index = 0; index < FAN_OUT_ROUNDS; index++) {
        const started = performance.now();
        await round();
        times.push(performance.now() - started);
    }
    return median(times);
}

function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
}

/** Calls `connect` for `count` peers, 100 at a time (as many apps starting at once, without a connection storm). */
async function inBatches<T>(count: number, connect: (index: number) => Promise<T>): Promise<T[]> {
    const connected: T[] = [];
    for (let batch = 0; batch < count; batch += 100) {
        connected.push(...await Promise.all(Array.from({ length: Math.min(100, count - batch) }, (_, i) => connect(batch + i))));
    }
    return connected;
}

/**
 * 3 and 4. A crowd of SDK peers on one broker, as apps run them (each with its storage, presence stream and
 * watchdog): the broker's memory per peer and the registration rate while they join (4); then one message to the
 * first `fanOut` of them, as N calls (3, "fan-out") and as one `broadcast` (3, "multicast"): time until the last
 * answer is back. The raw ws relay does the fan-out with the same number of receivers.
 */
export async function peerCrowd(sizes: Sizes): Promise<Measurement[]> {
    const crowd = Math.max(sizes.idlePeers, sizes.fanOut);
    const idle = `${crowd} idle peers (SDK)`;
    const fanOutScenario = `fan-out to ${sizes.fanOut} peers`;
    const multicastScenario = `multicast to ${sizes.fanOut} peers`;
    const measurements: Measurement[] = [];
    await withServer('switchboard.ts', async server => {
        const url = `ws://127.0.0.1:${server.port}`;
        const before = await server.memory();
        const started = performance.now();
        const receivers = await inBatches(crowd, i => Peer.connect({ url, id: `r${i}`, expose: [[EchoController, 'bench/echo']] }));
        const seconds = (performance.now() - started) / 1000;
        const after = await server.memory();
        measurements.push(
            // RSS moves with the young generation V8 keeps committed (up to 32 MiB); the heap retained does not.
            { scenario: idle, system: 'Switchboard', metric: 'broker RSS per peer', unit: 'KiB', value: (after.rss - before.rss) / 1024 / crowd, better: 'lower' },
            { scenario: idle, system: 'Switchboard', metric: 'broker memory retained per idle peer (heap + external, after GC)', unit: 'KiB', value: (after.retained - before.retained) / 1024 / crowd, better: 'lower' },
            { scenario: idle, system: 'Switchboard', metric: 'registration rate', unit: 'peers/s', value: crowd / seconds, better: 'higher' },
        );
        const sender = await Peer.connect({ url, id: 'sender' });
        try {
            const targets = receivers.slice(0, sizes.fanOut).map(r => r.id);
            const proxies = targets.map(id => sender.to(id).controller<EchoApi>('bench/echo'));
            await warmUp(() => Promise.all(proxies.map(proxy => proxy.echo(payload()))));
            measurements.push({ scenario: fanOutScenario, system: 'Switchboard', metric: 'time to last', unit: 'ms', value: await medianRound(() => Promise.all(proxies.map(proxy => proxy.echo(payload())))), better: 'lower' });

            // Written against the lead's multicast API; a tree without it reports so instead of failing the run.
            if (typeof (Peer.prototype as { broadcast?: unknown }).broadcast !== 'function') {
                measurements.push({ scenario: multicastScenario, system: 'Switchboard', metric: 'time to last', unit: 'ms', value: null, better: 'lower', note: 'not available (no Peer.broadcast)' });
            } else {
                const broadcast = async () => {
                    const result = await sender.broadcast(targets, 'bench/echo', 'echo', [payload()], { collectReplies: true });
                    const answered = Object.values(result.replies ?? {}).filter(reply => 'result' in reply).length;
                    if (answered !== targets.length) throw new Error(`multicast: ${answered} of ${targets.length} answered (${result.failed} not delivered)`);
                };
                await warmUp(broadcast);
                measurements.push({ scenario: multicastScenario, system: 'Switchboard', metric: 'time to last', unit: 'ms', value: await medianRound(broadcast), better: 'lower' });
            }
        } finally {
            await sender.close();
            await Promise.all(receivers.map(r => r.close()));
        }
    });
    const relayMs = await withServer('ws-relay.ts', async server => {
        const receivers = await inBatches(sizes.fanOut, i => RelayClient.connect(server.port, `r${i}`).then(r => r.echo()));
        const sender = await RelayClient.connect(server.port, 'sender');
        try {
            await warmUp(() => Promise.all(receivers.map(r => sender.request(r.id, payload()))));
            return await medianRound(() => Promise.all(receivers.map(r => sender.request(r.id, payload()))));
        } finally {
            sender.close();
            receivers.forEach(r => r.close());
        }
    });
    measurements.push(
        { scenario: fanOutScenario, system: 'raw ws relay', metric: 'time to last', unit: 'ms', value: relayMs, better: 'lower' },
        { scenario: multicastScenario, system: 'raw ws relay', metric: 'time to last', unit: 'ms', value: relayMs, better: 'lower' },
    );
    return measurements;
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

/** The systems of the cross-broker scenario; `Switchboard` (ours) is the call across brokers. */
export const SAME_BROKER = 'Switchboard, same broker';
export const RAW_NATS = 'raw NATS request/reply';

/**
 * 6. A peer call across two brokers of one cluster (caller on broker 1, callee on broker 2, both brokers on one
 * nats-server), next to the same call within broker 1 of that cluster, with raw NATS request/reply between two
 * connections as the floor: what crossing brokers costs. Without nats-server the scenario says so and is skipped.
 */
export async function crossBrokerCall(sizes: Sizes): Promise<Measurement[]> {
    const scenario = 'cross-broker peer call';
    let nats: RunningNatsServer;
    try {
        nats = await startNatsServer();
    } catch (error) {
        if (!(error instanceof NatsServerMissing)) throw error;
        process.stdout.write(`! skipped: ${error.message}\n`);
        return [{ scenario, system: 'Switchboard', metric: 'skipped', unit: '', value: null, better: 'higher', note: 'skipped: nats-server not found' }];
    }
    const broker = (id: string) => ({ BENCH_NATS_URL: nats.url, BENCH_BROKER_ID: id });
    const expose: [typeof EchoController, string][] = [[EchoController, 'bench/echo']];
    try {
        return await withServer('switchboard-cluster.ts', first => withServer('switchboard-cluster.ts', async second => {
            const url = (server: ServerProcess) => `ws://127.0.0.1:${server.port}`;
            const caller = await Peer.connect({ url: url(first), id: 'alice' });
            const local = await Peer.connect({ url: url(first), id: 'bob-local', expose });
            // Broker 1 learns of a peer on broker 2 through the cluster directory: call once it says so.
            // Presence follows the peers one deals with: the caller asks for bob-remote before it waits for him.
            await caller.watchPresence(['bob-remote']);
            const remoteKnown = firstValueFrom(caller.presence$.pipe(filter(event => event.peerId === 'bob-remote' && event.kind === 'online')));
            const remote = await Peer.connect({ url: url(second), id: 'bob-remote', expose });
            await remoteKnown;
            try {
                const sameCall = (payload: Uint8Array) => caller.to('bob-local').controller<EchoApi>('bench/echo').echo(payload);
                const crossCall = (payload: Uint8Array) => caller.to('bob-remote').controller<EchoApi>('bench/echo').echo(payload);
                // Both paths warm (JIT, buffers, NATS subscriptions) before either is measured: the first measured
                // would otherwise pay for the code both share.
                const warm = { ...sizes, throughputCalls: sizes.warmup * 10 };
                await throughputRun(sameCall, warm);
                await throughputRun(crossCall, warm);
                const same = await callMeasurements(scenario, SAME_BROKER, sameCall, sizes);
                const cross = await callMeasurements(scenario, 'Switchboard', crossCall, sizes);
                const floor = await natsRequestReply(nats, scenario, sizes);
                const p50 = (measurements: Measurement[]) => measurements.find(m => m.metric === 'p50 latency')!.value!;
                return [...cross, ...same, ...floor,
                    { scenario, system: 'Switchboard', metric: 'p50 latency over same broker', unit: 'ms', value: p50(cross) - p50(same), better: 'lower' }];
            } finally {
                await caller.close();
                await local.close();
                await remote.close();
            }
        }, broker('bench-2')), broker('bench-1'));
    } finally {
        await nats.stop();
    }
}

/** The floor under any call across brokers: a request and its reply through nats-server, between two connections. */
async function natsRequestReply(nats: RunningNatsServer, scenario: string, sizes: Sizes): Promise<Measurement[]> {
    const { connect } = await import('@nats-io/transport-node');
    const responder = await connect({ servers: nats.url });
    const requester = await connect({ servers: nats.url });
    try {
        responder.subscribe('bench.echo', { callback: (error: Error | null, message: Msg) => error || message.respond(message.data) });
        await responder.flush();
        return await callMeasurements(scenario, RAW_NATS, payload => requester.request('bench.echo', payload, { timeout: 30_000 }), sizes);
    } finally {
        await requester.close();
        await responder.close();
    }
}
