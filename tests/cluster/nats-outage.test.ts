import { PeerIdTaken, PeerOffline } from '../../shared';
import { api, echoOf, eventually, Resources } from '../helpers';
import { exchangeOf, recovered, sees, TestCluster } from './cluster-fixture';
import { describeWithNats, NatsServer } from './nats-server';

const resources = new Resources();
let nats: NatsServer | undefined;

/** Long enough that the brief outages below do not count as deaths. */
const SURVIVES_OUTAGE = { clusterHeartbeatMs: 100, clusterDeathTimeoutMs: 20_000 };

describeWithNats('Cluster: NATS goes away and comes back', () => {
    afterEach(async () => {
        await resources.closeAll();
        await nats?.dispose();
    });

    /** Two brokers; alice and carol on the first, bob on the second, all introduced. */
    async function twoBrokers() {
        nats = await NatsServer.start();
        const cluster = new TestCluster(nats, resources);
        const [one, two] = [await cluster.broker(SURVIVES_OUTAGE), await cluster.broker(SURVIVES_OUTAGE)];
        const { registration } = await resources.servingPeer(two.url, 'bob');
        await resources.servingPeer(one.url, 'carol');
        const alice = resources.peerClient(one.url);
        await api(alice).register('alice');
        await sees(one, 'bob', exchangeOf(two).brokerId);
        expect(await echoOf(alice, 'bob').echo('before')).toBe('before');
        return { one, two, alice, bobSecret: registration.reclaimSecret };
    }

    async function outage(run: () => Promise<void>, ...brokers: Parameters<typeof exchangeOf>[0][]) {
        await run();
        await eventually(() => brokers.every(broker => !exchangeOf(broker).connected), 10_000);
    }

    /**
     * After NATS is back: both brokers recovered, the remote call works, bob's ID is still taken cluster-wide (the
     * directory holds it, or bob's broker wrote it into an empty store again), and new registrations travel.
     */
    async function worksAgain(one: Parameters<typeof exchangeOf>[0], two: Parameters<typeof exchangeOf>[0], alice: Awaited<ReturnType<typeof twoBrokers>>['alice']) {
        await recovered(one);
        await recovered(two);
        expect(await echoOf(alice, 'bob').echo('after')).toBe('after');
        await expect(api(resources.peerClient(one.url)).register('bob')).rejects.toBeInstanceOf(PeerIdTaken);
        await resources.servingPeer(two.url, 'dave');
        await sees(one, 'dave');
        expect(await echoOf(alice, 'dave').echo('new')).toBe('new');
    }

    it('local calls go on, remote calls fail at once; back with the same store, remote calls work again', async () => {
        const { one, two, alice } = await twoBrokers();
        await outage(() => nats!.kill(), one, two);

        expect(await echoOf(alice, 'carol').echo('local')).toBe('local');
        await expect(echoOf(alice, 'bob').echo('remote')).rejects.toBeInstanceOf(PeerOffline);

        await nats!.restart();
        await worksAgain(one, two, alice);
    });

    it('back with an empty store: registrations are asserted again and the watches rebuilt', async () => {
        const { one, two, alice } = await twoBrokers();
        await outage(() => nats!.kill(), one, two);
        await nats!.restart({ emptyStore: true });
        await worksAgain(one, two, alice);
    });

    it('a broker cut off longer than the death timeout closes its peers, so they move elsewhere', async () => {
        nats = await NatsServer.start();
        const cluster = new TestCluster(nats, resources);
        const one = await cluster.broker({ clusterHeartbeatMs: 100, clusterDeathTimeoutMs: 500 });
        const { client: carol } = await resources.servingPeer(one.url, 'carol');
        const closed = new Promise<void>(resolve => carol.transporter.disconnected.subscribe(() => resolve()));
        await nats.kill();
        await closed;
        expect(exchangeOf(one).lookup('carol')).toBeUndefined();
    });
});
