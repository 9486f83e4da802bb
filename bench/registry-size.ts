import { RpcWebSocketClientAdapter } from '@deepkit/rpc';
import WebSocket from 'ws';
import { PeerClient } from '../peer/internal';
import { BrokerApi } from '../shared';
import type { Measurement } from './scenarios';
import { ServerProcess } from './systems';

export interface RegistrySizeSizes {
    /** Known peer IDs of the small registry (the baseline). */
    small: number;
    /** Known peer IDs of the large registry. */
    large: number;
    /** Requests per endpoint and broker before measuring. */
    warmup: number;
    /** Measured requests per endpoint and broker. */
    requests: number;
}

export const fullRegistrySizes: RegistrySizeSizes = { small: 100, large: 30_000, warmup: 100, requests: 1_000 };
export const quickRegistrySizes: RegistrySizeSizes = { small: 100, large: 3_000, warmup: 10, requests: 50 };

/** Raw clients making IDs known at once: enough to keep the broker busy, few enough not to be a connection storm. */
const CLIENTS = 50;

/**
 * Makes `count` peer IDs known to the broker at `url`, as churn does: `CLIENTS` raw clients each register an ID and
 * deregister it (a clean release, so the ID is offline at once and nothing is held), then the next one.
 */
async function makeKnown(url: string, count: number): Promise<void> {
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(CLIENTS, count) }, async () => {
        const client = new PeerClient(new RpcWebSocketClientAdapter(url, WebSocket as never), PeerClient.createPeerKernel());
        const broker = client.controller<BrokerApi>(BrokerApi.path, { timeout: 120_000 });
        try {
            while (next < count) {
                await broker.register(`known-${next++}`);
                await broker.deregister();
            }
        } finally {
            await client.disconnect();
        }
    }));
}

/** The milliseconds of one GET, body read to the end; a non-200 answer fails the scenario. */
async function timedGet(url: string): Promise<number> {
    const started = performance.now();
    const response = await fetch(url);
    await response.arrayBuffer();
    const elapsed = performance.now() - started;
    if (response.status !== 200) throw new Error(`GET ${url}: ${response.status}`);
    return elapsed;
}

async function peersKnown(port: number): Promise<number> {
    return (await (await fetch(`http://127.0.0.1:${port}/status`)).json() as { peersKnown: number }).peersKnown;
}

function percentile(sorted: number[], p: number): number {
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/**
 * `/status` and `/metrics` by registry size (issue 18: each costs the same at 100 and at 30,000 known IDs). Two
 * brokers in their own processes, side by side: one knows `small` peer IDs, the other `large` (registered and
 * released by raw clients; `/status` must count them). Then GET /status and GET /metrics one after another, taking
 * turns between the brokers, so a burst of load on a shared machine hits both and moves the ratio less: median and
 * p99 per request. The large registry is `Switchboard`, the small one its baseline (the ratio is large ÷ small).
 */
export async function registrySizeCost(sizes: RegistrySizeSizes): Promise<Measurement[]> {
    const scenario = `/status and /metrics, ${sizes.large} known IDs`;
    const smallSystem = registryBaseline(sizes.small);
    const small = await ServerProcess.start('switchboard.ts');
    try {
        const large = await ServerProcess.start('switchboard.ts');
        try {
            await makeKnown(`ws://127.0.0.1:${small.port}`, sizes.small);
            await makeKnown(`ws://127.0.0.1:${large.port}`, sizes.large);
            for (const [server, count] of [[small, sizes.small], [large, sizes.large]] as const) {
                const known = await peersKnown(server.port);
                if (known < count) throw new Error(`a broker knows ${known} peer IDs after ${count} were registered and released`);
            }
            const measurements: Measurement[] = [];
            for (const endpoint of ['/status', '/metrics']) {
                const smallUrl = `http://127.0.0.1:${small.port}${endpoint}`;
                const largeUrl = `http://127.0.0.1:${large.port}${endpoint}`;
                for (let i = 0; i < sizes.warmup; i++) {
                    await timedGet(smallUrl);
                    await timedGet(largeUrl);
                }
                const smallTimes: number[] = [];
                const largeTimes: number[] = [];
                for (let i = 0; i < sizes.requests; i++) {
                    // Alternating who goes first: neither broker always follows the other's request.
                    if (i % 2) {
                        smallTimes.push(await timedGet(smallUrl));
                        largeTimes.push(await timedGet(largeUrl));
                    } else {
                        largeTimes.push(await timedGet(largeUrl));
                        smallTimes.push(await timedGet(smallUrl));
                    }
                }
                for (const [system, times] of [['Switchboard', largeTimes], [smallSystem, smallTimes]] as const) {
                    times.sort((a, b) => a - b);
                    measurements.push(
                        { scenario, system, metric: `GET ${endpoint} p50`, unit: 'ms', value: percentile(times, 0.5), better: 'lower' },
                        { scenario, system, metric: `GET ${endpoint} p99`, unit: 'ms', value: percentile(times, 0.99), better: 'lower' },
                    );
                }
            }
            return measurements;
        } finally {
            await large.stop();
        }
    } finally {
        await small.stop();
    }
}

/** The baseline system of the registry-size scenario: the same broker knowing `small` IDs. */
export function registryBaseline(small: number): string {
    return `Switchboard, ${small} known IDs`;
}
