import { filter } from 'rxjs/operators';
import { BrokerProcess } from '../../bench/chaos/broker-process';
import { api, echoOf, eventually, Resources } from '../helpers';
import { exchangeOf, FAST_CLUSTER, sees, usesCluster } from './cluster-fixture';
import { describeWithNats } from './nats-server';

const resources = new Resources();

/** The stall: several death timeouts of FAST_CLUSTER long, so the others reap the frozen broker's peers meanwhile. */
const STALL_MS = 3_000;

describeWithNats('Cluster: a broker frozen (SIGSTOP) and woken (SIGCONT)', () => {
    const context = usesCluster(resources);

    it('judges nobody by the clocks that stopped while it was frozen: no peer of another broker goes offline', async () => {
        const { cluster } = context;
        const [live, frozen] = await Promise.all([
            cluster.broker(),
            BrokerProcess.start(':memory:', cluster.flags()).then(broker => resources.add(broker, child => child.kill())),
        ]);
        const liveId = exchangeOf(live).brokerId;
        const livePeers = ['ann', 'ben', 'cat'];
        for (const peerId of livePeers) await resources.servingPeer(live.url, peerId);
        await resources.servingPeer(frozen.url, 'zed');
        const callerOnFrozen = resources.peerClient(frozen.url);
        await api(callerOnFrozen).register('yan');
        await sees(live, 'zed');
        await sees(live, 'yan');
        expect(await echoOf(callerOnFrozen, 'ann').echo('before')).toBe('before');

        const offline: string[] = [];
        exchangeOf(live).presence.pipe(filter(event => event.kind === 'offline')).subscribe(event => offline.push(event.peerId));

        for (let round = 0; round < 2; round++) {
            const zedGone = new Promise<void>(resolve => exchangeOf(live).presence.pipe(filter(event => event.kind === 'offline' && event.peerId === 'zed')).subscribe(() => resolve()));
            process.kill(frozen.pid, 'SIGSTOP');
            // The live broker reaps the frozen one's peers: a death it is right about.
            await zedGone;
            await new Promise(resolve => setTimeout(resolve, STALL_MS - FAST_CLUSTER.clusterDeathTimeoutMs!));
            process.kill(frozen.pid, 'SIGCONT');

            // The woken broker claims its peers back, routes to the live broker's peers, and is reachable again.
            await sees(live, 'zed', undefined);
            await sees(live, 'yan', undefined);
            await eventually(() => exchangeOf(live).brokers().every(broker => broker.alive));
            expect(await echoOf(callerOnFrozen, 'ben').echo(`after ${round}`)).toBe(`after ${round}`);
            expect(await echoOf(resources.peerClient(live.url), 'zed').echo('back')).toBe('back');
            await exchangeOf(live).settled();
            for (const peerId of livePeers) expect(exchangeOf(live).lookup(peerId)?.brokerId).toBe(liveId);
        }
        expect(offline.filter(peerId => livePeers.includes(peerId))).toEqual([]);
    });
});
