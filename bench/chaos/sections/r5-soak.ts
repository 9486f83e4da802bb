import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { request } from 'http';
import { tmpdir } from 'os';
import { join } from 'path';
import { BrokerProcess } from '../broker-process';
import { PeerHost } from '../peer-host-client';
import { counts, mebibytes } from '../report';
import { ChaosContext, ChaosRow, ChaosSection } from '../section';

interface Sizes {
    /** Peer processes, and peers in each. */
    hosts: number;
    peersPerHost: number;
    durationMs: number;
    /** Pause between two operations of one peer. */
    pauseMs: number;
    churnEveryMs: number;
}

const full: Sizes = { hosts: 2, peersPerHost: 100, durationMs: 60_000, pauseMs: 250, churnEveryMs: 500 };
const quick: Sizes = { hosts: 1, peersPerHost: 20, durationMs: 5000, pauseMs: 100, churnEveryMs: 500 };

const CALL_TIMEOUT_MS = 5000;
const START_TIMEOUT_MS = 90_000;
/** Peers that leave for good (close()) after the soak: their registrations and sockets must go. */
const LEAVING_SHARE = 0.25;
/** How long the broker may take to show an expected count (online peers) before the count is taken as it is. */
const SETTLE_MS = 30_000;
const STORM_LIMIT_MS = 180_000;
const SOCKET_SETTLE_MS = 10_000;
/** The broker exposes no heap gauge: a probe preloaded into its process prints it on SIGUSR2 (after a GC). */
const HEAP_PROBE = ['--expose-gc', '-r', './bench/chaos/heap-probe.ts'];

function getJson(port: number, path: string, timeoutMs = 3000): Promise<any> {
    return new Promise(resolve => {
        // Connection: close, answered once the socket is gone: the harness's own request must not count as a socket.
        const call = request({ host: '127.0.0.1', port, path, timeout: timeoutMs, agent: false, headers: { connection: 'close' } }, response => {
            let body = '';
            response.on('data', chunk => body += chunk);
            response.on('close', () => {
                try {
                    resolve(JSON.parse(body));
                } catch {
                    resolve(undefined);
                }
            });
        });
        call.on('timeout', () => call.destroy());
        call.on('error', () => resolve(undefined));
        call.end();
    });
}

async function online(broker: BrokerProcess): Promise<number | undefined> {
    return (await getJson(broker.port, '/status'))?.peersOnline;
}

/** Polls /status until `peersOnline` is `expected` or `withinMs` passes. @returns the last count and when it matched */
async function onlineReaches(broker: BrokerProcess, expected: number, withinMs: number): Promise<{ count?: number, ms?: number }> {
    const started = performance.now();
    let count: number | undefined;
    while (performance.now() - started < withinMs) {
        count = await online(broker);
        if (count === expected) return { count, ms: performance.now() - started };
        await new Promise(resolve => setTimeout(resolve, 100));
    }
    return { count };
}

/** Established TCP connections on the broker's port, from the broker's side (/proc/net/tcp{,6}). */
function brokerSockets(port: number): number {
    const local = ':' + port.toString(16).toUpperCase().padStart(4, '0');
    let count = 0;
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
        let text = '';
        try {
            text = readFileSync(file, 'utf8');
        } catch {
            continue;
        }
        for (const line of text.split('\n').slice(1)) {
            const fields = line.trim().split(/\s+/);
            if (fields[1]?.endsWith(local) && fields[3] === '01') count++;
        }
    }
    return count;
}

async function heapUsed(broker: BrokerProcess): Promise<number | null> {
    broker.program.clearOutput();
    process.kill(broker.pid, 'SIGUSR2');
    try {
        const [, json] = await broker.program.waitFor(/chaos-heap (\{.*\})\n/, 10_000);
        return JSON.parse(json).heapUsed;
    } catch {
        return null;
    }
}

interface Snapshot {
    online?: number;
    sockets: number;
    rss: number | null;
    heap: number | null;
}

async function snapshot(broker: BrokerProcess, expected: number): Promise<Snapshot> {
    const { count } = await onlineReaches(broker, expected, SETTLE_MS);
    // A closing handshake may trail the release of the registration: a socket counts as leaked only if it stays.
    const until = performance.now() + SOCKET_SETTLE_MS;
    while (brokerSockets(broker.port) !== expected && performance.now() < until) await new Promise(resolve => setTimeout(resolve, 100));
    return { online: count, sockets: brokerSockets(broker.port), heap: await heapUsed(broker), rss: broker.rss() };
}

async function runSoak(context: ChaosContext): Promise<SoakFigures> {
    const sizes = context.quick ? quick : full;
    const total = sizes.hosts * sizes.peersPerHost;
    const directory = mkdtempSync(join(tmpdir(), 'switchboard-chaos-r5-'));
    const database = join(directory, 'broker.sqlite');
    const hosts: PeerHost[] = [];
    let broker: BrokerProcess | undefined;
    try {
        const [b, ...started] = await Promise.all([
            BrokerProcess.start(database, [], START_TIMEOUT_MS, HEAP_PROBE).then(started => broker = started),
            ...Array.from({ length: sizes.hosts }, (_, h) => PeerHost.start(`soak-${h}`, START_TIMEOUT_MS).then(host => (hosts.push(host), host))),
        ]) as [BrokerProcess, ...PeerHost[]];
        const ids = started.map((_, h) => Array.from({ length: sizes.peersPerHost }, (_, i) => `soak-${h}-${i}`));
        const options = ids.map(list => list.map(peer => ({ peer, url: b.url, callTimeoutMs: CALL_TIMEOUT_MS })));
        await Promise.all(started.map((host, h) => host.request('connectMany', { options: options[h], concurrency: 8 }, 300_000)));
        const baseline = await snapshot(b, total);
        context.log(`${total} peers online (${baseline.online}); soaking ${sizes.durationMs / 1000} s`);

        const all = ids.flat();
        const stats = await Promise.all(started.map((host, h) => host.request('soak', {
            ids: all, local: options[h], durationMs: sizes.durationMs, pauseMs: sizes.pauseMs, chatEvery: 5,
            churnEveryMs: sizes.churnEveryMs * sizes.hosts, churnDownMs: 500, callTimeoutMs: CALL_TIMEOUT_MS,
        }, sizes.durationMs + 300_000)));
        const activity = { calls: 0, callsFailed: 0, chats: 0, chatsFailed: 0, churns: 0, reconnectFailures: 0, errors: {} as Record<string, number> };
        for (const each of stats) {
            for (const key of ['calls', 'callsFailed', 'chats', 'chatsFailed', 'churns', 'reconnectFailures'] as const) activity[key] += each[key];
            for (const [code, count] of Object.entries(each.errors as Record<string, number>)) activity.errors[code] = (activity.errors[code] ?? 0) + count;
        }
        const afterSoak = await snapshot(b, total);
        context.log(`soak over: ${activity.calls} calls, ${activity.chats} chat messages, ${activity.churns} leave-and-return; ${afterSoak.online} online`);

        const leaving = ids.map(list => list.slice(0, Math.round(list.length * LEAVING_SHARE)));
        const closeFailures = (await Promise.all(started.map((host, h) => host.request<{ failures: string[] }>('closeMany', { peers: leaving[h] }, 60_000)))).flatMap(result => result.failures);
        const staying = total - leaving.flat().length;
        const afterLeave = await snapshot(b, staying);
        context.log(`${leaving.flat().length} peers left: ${afterLeave.online} online, ${afterLeave.sockets} sockets`);

        // The reconnect storm: the same broker (port, database) goes down cleanly and comes back.
        const stopAt = performance.now();
        await b.stop();
        broker = undefined;
        broker = await BrokerProcess.start(database, ['--port', String(b.port)], START_TIMEOUT_MS, HEAP_PROBE);
        const listeningAfterMs = performance.now() - stopAt;
        const storm = await onlineReaches(broker, staying, STORM_LIMIT_MS);
        const afterStorm: Snapshot = { online: storm.count, sockets: brokerSockets(broker.port), heap: await heapUsed(broker), rss: broker.rss() };
        context.log(`broker restarted: ${storm.count}/${staying} peers back ${storm.ms === undefined ? 'not all' : `in ${(storm.ms / 1000).toFixed(1)} s`}`);
        return { sizes, total, staying, baseline, afterSoak, afterLeave, afterStorm, activity, closeFailures, storm: { listeningAfterMs, allBackMs: storm.ms } };
    } finally {
        await Promise.all(hosts.map(host => host.kill()));
        await broker?.kill();
        rmSync(directory, { recursive: true, force: true });
    }
}

interface SoakFigures {
    sizes: Sizes;
    total: number;
    staying: number;
    baseline: Snapshot;
    afterSoak: Snapshot;
    afterLeave: Snapshot;
    afterStorm: Snapshot;
    activity: { calls: number, callsFailed: number, chats: number, chatsFailed: number, churns: number, reconnectFailures: number, errors: Record<string, number> };
    storm: { listeningAfterMs: number, allBackMs?: number };
    /** close() calls that threw (the peer was dropped all the same). */
    closeFailures: string[];
}

const versus = (value: number | undefined, expected: number) => value === expected ? `${value} (as expected)` : `**${value ?? 'no answer'}** (expected ${expected})`;
const growth = (from: number | null, to: number | null) => from === null || to === null ? '' : ` (${to >= from ? '+' : ''}${mebibytes(to - from)})`;

export const section: ChaosSection = {
    id: 'R5',
    title: 'soak and reconnect storm',
    async run(context) {
        const figures = await runSoak(context);
        const { sizes, total, staying, baseline, afterSoak, afterLeave, afterStorm, activity, storm, closeFailures } = figures;
        const row = (measure: string, value: string, data?: unknown): ChaosRow => ({ cells: { measure, value }, data });
        return {
            columns: ['measure', 'value'],
            rows: [
                row('activity', `${activity.calls} calls (${activity.callsFailed} failed), ${activity.chats} chat messages (${activity.chatsFailed} failed), ${activity.churns} leave-and-return, ${activity.reconnectFailures} failed comebacks; errors: ${counts(activity.errors)}`, activity),
                row('broker RSS: online → after soak → after 25% left → after restart + storm', `${mebibytes(baseline.rss)} → ${mebibytes(afterSoak.rss)}${growth(baseline.rss, afterSoak.rss)} → ${mebibytes(afterLeave.rss)} → ${mebibytes(afterStorm.rss)}`),
                row('broker heap after GC: online → after soak → after 25% left → after restart + storm', `${mebibytes(baseline.heap)} → ${mebibytes(afterSoak.heap)}${growth(baseline.heap, afterSoak.heap)} → ${mebibytes(afterLeave.heap)} → ${mebibytes(afterStorm.heap)}`),
                row('peers online (/status) after the soak, all back', versus(afterSoak.online, total)),
                row(`peers online after ${total - staying} closed for good`, versus(afterLeave.online, staying) + (closeFailures.length ? `; **${closeFailures.length} close() threw**: ${closeFailures[0]}` : '')),
                row('broker sockets (established) after the soak', versus(afterSoak.sockets, total)),
                row(`broker sockets after ${total - staying} closed for good`, versus(afterLeave.sockets, staying)),
                row('reconnect storm: broker SIGTERMed, restarted on the same port and database',
                    storm.allBackMs === undefined
                        ? `**not all back**: ${afterStorm.online ?? 'no answer'} of ${staying} online ${STORM_LIMIT_MS / 1000} s after the new broker listened`
                        : `all ${staying} registered again ${(storm.allBackMs / 1000).toFixed(1)} s after the new broker listened (${((storm.listeningAfterMs + storm.allBackMs) / 1000).toFixed(1)} s after SIGTERM; ${afterStorm.sockets} sockets)`,
                    storm),
            ].map((each, i) => i === 0 ? { ...each, data: figures } : each),
            notes: [
                `${total} SDK peers (:memory: storage) in ${sizes.hosts} process(es) for ${sizes.durationMs / 1000} s: each peer every ~${sizes.pauseMs} ms calls a random peer's echo (timeout ${CALL_TIMEOUT_MS} ms) or, one time in five, chat.send()s it; every ~${sizes.churnEveryMs} ms a random peer close()s and comes back 0.5 s later. Calls to a peer that is away fail (PEER_OFFLINE/PEER_NOT_FOUND): expected.`,
                `Counts are taken once /status shows the expected number of online peers, or after ${SETTLE_MS / 1000} s (sockets: up to ${SOCKET_SETTLE_MS / 1000} s more). Broker RSS from /proc/<pid>/status; heap from a probe preloaded into the broker (it has no heap gauge on /metrics), after a forced GC; sockets = ESTABLISHED connections on the broker's port, its side (/proc/net/tcp).`,
                'Reconnect storm: the peers reconnect on their own (SDK backoff: 100 ms doubling to 10 s, ±50% jitter); the time runs until /status shows every remaining peer online.',
            ],
        };
    },
};
