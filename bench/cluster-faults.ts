/**
 * What a cluster does under the faults of issue 19, with the default heartbeat settings (`clusterHeartbeatMs` 500,
 * `clusterDeathTimeoutMs` 2000): a real nats-server with a user per broker, one broker in this process ("live") and
 * one in a child process ("frozen"), SDK peers on both. A measurement, not a test:
 * `npm run bench:cluster-faults [-- stall rounds, stall ms, outage ms]` (default 3 8000 6000).
 *
 * - Stall: SIGSTOP the child broker for longer than the death timeout, then SIGCONT. Counts offline events of the
 *   live broker's peers (must be 0: the woken broker may not judge them by the heartbeats it missed) and the time
 *   until the frozen broker's peer is back online.
 * - NATS outage (same store, then an empty one): calls between two peers of one broker in a loop, and calls across
 *   brokers, while NATS is away; then the time until a call across brokers works again.
 */
import { rpc } from '@deepkit/rpc';
import { Peer } from '../peer';
import { startBroker } from '../server';
import { BrokerProcess } from './chaos/broker-process';
import { NatsServer } from './nats-server';

@rpc.controller('bench/echo')
class EchoController {
    @rpc.action()
    echo(text: string): string {
        return text;
    }
}

interface EchoApi {
    echo(text: string): Promise<string>;
}

const expose: [typeof EchoController, string][] = [[EchoController, 'bench/echo']];
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** Resolves when `condition` holds (checked every 20 ms), with the milliseconds it took; rejects after `timeoutMs`. */
async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<number> {
    const started = performance.now();
    while (!await condition()) {
        if (performance.now() - started > timeoutMs) throw new Error('condition not met in time');
        await sleep(20);
    }
    return performance.now() - started;
}

async function callsWork(caller: Peer, target: string): Promise<boolean> {
    return caller.to(target).controller<EchoApi>('bench/echo').echo('ping').then(() => true, () => false);
}

async function main(): Promise<void> {
    const [stallRounds, stallMs, outageMs] = [Number(process.argv[2] ?? 3), Number(process.argv[3] ?? 8_000), Number(process.argv[4] ?? 6_000)];
    const nats = await NatsServer.start();
    const cluster = 'faults';
    const urls = await nats.addBrokers(cluster, ['live', 'frozen']);
    const live = await startBroker({ port: 0, database: ':memory:', natsUrl: urls.get('live'), brokerId: 'live', cluster, logLevel: 'error' });
    const frozen = await BrokerProcess.start(':memory:', ['--natsUrl', urls.get('frozen')!, '--brokerId', 'frozen', '--cluster', cluster]);
    const peers: Peer[] = [];
    const connect = async (url: string, id: string) => {
        const peer = await Peer.connect({ url, id, expose, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
        peers.push(peer);
        return peer;
    };
    try {
        const livePeers = ['ann', 'ben', 'cat'];
        const [ann] = [await connect(live.url, 'ann'), await connect(live.url, 'ben'), await connect(live.url, 'cat')];
        const zed = await connect(frozen.url, 'zed');
        await waitFor(() => callsWork(ann, 'zed'));
        await waitFor(() => callsWork(zed, 'ann'));
        const offline = new Map<string, number>();
        // Presence follows the peers one deals with: ann follows every peer, so a wrong offline event cannot go unseen.
        await ann.watchPresence([...livePeers, 'zed']);
        ann.presence$.subscribe(event => event.kind === 'offline' && offline.set(event.peerId, (offline.get(event.peerId) ?? 0) + 1));

        for (let round = 1; round <= stallRounds; round++) {
            offline.clear();
            process.kill(frozen.pid, 'SIGSTOP');
            await sleep(stallMs);
            process.kill(frozen.pid, 'SIGCONT');
            const back = await waitFor(async () => await callsWork(ann, 'zed') && await callsWork(zed, 'ben'));
            // Late reaps would come within two death timeouts.
            await sleep(4_000);
            const ofLive = livePeers.reduce((sum, id) => sum + (offline.get(id) ?? 0), 0);
            console.log(`stall ${round} (${stallMs} ms SIGSTOP): offline events of the live broker's peers ${ofLive}; of the frozen broker's peer ${offline.get('zed') ?? 0}; calls both ways work ${back.toFixed(0)} ms after SIGCONT`);
        }

        for (const emptyStore of [false, true]) {
            await nats.kill();
            const started = performance.now();
            let same = 0;
            let sameFailed = 0;
            const crossErrors = new Map<string, number>();
            while (performance.now() - started < outageMs) {
                if (await callsWork(ann, 'ben')) same++;
                else sameFailed++;
                await ann.to('zed').controller<EchoApi>('bench/echo').echo('x').catch((error: Error & { code?: string }) => {
                    crossErrors.set(error.code ?? error.name, (crossErrors.get(error.code ?? error.name) ?? 0) + 1);
                });
            }
            await nats.restart({ emptyStore });
            const restarted = performance.now();
            const back = await waitFor(async () => await callsWork(ann, 'zed') && await callsWork(zed, 'ann'));
            const errors = [...crossErrors].map(([code, count]) => `${code} ×${count}`).join(', ') || 'none';
            console.log(`NATS away ${outageMs} ms (${emptyStore ? 'empty' : 'same'} store): same-broker calls ${same} ok, ${sameFailed} failed; cross-broker errors ${errors}; cross-broker calls work ${back.toFixed(0)} ms after NATS restarted (${(restarted - started).toFixed(0)} ms after it was killed)`);
        }
    } finally {
        await Promise.all(peers.map(peer => peer.close()));
        await frozen.kill();
        await live.close();
        await nats.dispose();
    }
}

main().then(() => process.exit(0), error => {
    console.error(error);
    process.exit(1);
});
