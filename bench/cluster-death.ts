/**
 * How long a cluster takes to notice a broker killed with SIGKILL, with the default heartbeat settings
 * (`clusterHeartbeatMs` 500, `clusterDeathTimeoutMs` 2000): a real nats-server, one broker in this process and one in a
 * child process that is killed while a call through it is in flight. Prints, per round, when the caller's call failed,
 * when a peer that stays away showed offline on the live broker, and when a peer with both URLs was registered on
 * the live broker again. A measurement, not a test: `npm run bench:cluster-death [-- rounds]`.
 */
import { firstValueFrom } from 'rxjs';
import { filter, take } from 'rxjs/operators';
import { rpc } from '@deepkit/rpc';
import { BrokerProcess } from './chaos/broker-process';
import { Peer } from '../peer';
import { startBroker } from '../server';
import { PeerOffline } from '../shared/errors';
import { NatsServer } from './nats-server';

let parked = 0;
let onParked = () => undefined as void;

@rpc.controller('bench/hold')
class HoldController {
    @rpc.action()
    hold(): Promise<string> {
        parked++;
        onParked();
        return new Promise(() => undefined);
    }

    @rpc.action()
    ping(): string {
        return 'pong';
    }
}

interface HoldApi {
    hold(): Promise<string>;
    ping(): Promise<string>;
}

async function round(nats: NatsServer, cluster: string): Promise<string> {
    const urls = await nats.addBrokers(cluster, ['live', 'doomed']);
    const live = await startBroker({ port: 0, database: ':memory:', natsUrl: urls.get('live'), brokerId: 'live', cluster, logLevel: 'error' });
    const doomed = await BrokerProcess.start(':memory:', ['--natsUrl', urls.get('doomed')!, '--brokerId', 'doomed', '--cluster', cluster]);
    const bob = await Peer.connect({ url: [doomed.url, live.url], id: 'bob', expose: [[HoldController, 'bench/hold']], reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    const carol = await Peer.connect({ url: doomed.url, id: 'carol', reconnect: false });
    const alice = await Peer.connect({ url: live.url, id: 'alice' });
    try {
        const toBob = alice.to('bob').controller<HoldApi>('bench/hold');
        await toBob.ping();
        let killedAt = 0;
        const sinceKill = () => performance.now() - killedAt;
        await alice.watchPresence(['carol']);
        const carolOffline = firstValueFrom(alice.presence$.pipe(filter(event => event.kind === 'offline' && event.peerId === 'carol'), take(1))).then(sinceKill);
        const isParked = new Promise<void>(resolve => onParked = resolve);
        const inFlight = toBob.hold().then(
            () => { throw new Error('the held call returned'); },
            error => {
                if (!(error instanceof PeerOffline)) throw error;
                return sinceKill();
            });
        await isParked;
        killedAt = performance.now();
        await doomed.kill();
        const moved = firstValueFrom(bob.state$.pipe(filter(state => state === 'registered' && bob.brokerUrl === live.url), take(1))).then(sinceKill);
        const [failed, offline, back] = await Promise.all([inFlight, carolOffline, moved]);
        await toBob.ping();
        return `in-flight call failed with PeerOffline after ${failed.toFixed(0)} ms; a peer of the dead broker offline on the live one after ${offline.toFixed(0)} ms; a peer with both URLs registered on the live broker after ${back.toFixed(0)} ms and callable`;
    } finally {
        await Promise.all([bob.close(), carol.close(), alice.close()]);
        await live.close();
    }
}

async function main(): Promise<void> {
    const rounds = Number(process.argv[2] ?? 3);
    const nats = await NatsServer.start();
    try {
        for (let i = 0; i < rounds; i++) console.log(`round ${i + 1}: ${await round(nats, `death-${i}`)}`);
    } finally {
        await nats.dispose();
    }
    console.log(`(parked calls: ${parked})`);
}

main().then(() => process.exit(0), error => {
    console.error(error);
    process.exit(1);
});
