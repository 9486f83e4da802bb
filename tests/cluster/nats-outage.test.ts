import { ClusterUnavailable, PeerIdTaken } from '../../shared';
import { BrokerProcess } from '../../bench/chaos/broker-process';
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
        const cluster = await TestCluster.create(nats, resources);
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

    it('local calls go on, remote calls fail at once with ClusterUnavailable; back with the same store, remote calls work again', async () => {
        const { one, two, alice } = await twoBrokers();
        await outage(() => nats!.kill(), one, two);

        expect(await echoOf(alice, 'carol').echo('local')).toBe('local');
        await expect(echoOf(alice, 'bob').echo('remote')).rejects.toBeInstanceOf(ClusterUnavailable);

        await nats!.restart();
        await worksAgain(one, two, alice);
    });

    it('back with an empty store: registrations are asserted again and the watches rebuilt', async () => {
        const { one, two, alice } = await twoBrokers();
        await outage(() => nats!.kill(), one, two);
        await nats!.restart({ emptyStore: true });
        await worksAgain(one, two, alice);
    });

    it('right after NATS is back, a call across brokers is answered or fails fast: never lost to a broker not subscribed again yet', async () => {
        nats = await NatsServer.start();
        const cluster = await TestCluster.create(nats, resources);
        // A broker's NATS reconnect wait follows its heartbeat interval: the second broker (500 ms, the default, in a
        // process of its own) is subscribed again well after the first (100 ms).
        const [one, two] = await Promise.all([
            cluster.broker({ clusterHeartbeatMs: 100, clusterDeathTimeoutMs: 2_000 }),
            BrokerProcess.start(':memory:', cluster.flags({ clusterHeartbeatMs: 500, clusterDeathTimeoutMs: 2_000 })).then(broker => resources.add(broker, child => child.kill())),
        ]);
        await resources.servingPeer(two.url, 'bob');
        const alice = resources.peerClient(one.url);
        await api(alice).register('alice');
        await sees(one, 'bob');
        expect(await echoOf(alice, 'bob').echo('before')).toBe('before');

        await outage(() => nats!.kill(), one);
        // Away for longer than the death timeout.
        await new Promise(resolve => setTimeout(resolve, 3_000));
        await nats!.restart();
        await eventually(() => exchangeOf(one).connected, 10_000);
        // Calls at once, while the other broker may not be subscribed again: NATS would drop a frame without a word.
        const outcomes: string[] = [];
        for (;;) {
            try {
                expect(await echoOf(alice, 'bob', 5_000).echo('after')).toBe('after');
                outcomes.push('answered');
                break;
            } catch (error) {
                outcomes.push((error as { code?: string }).code ?? String(error));
                if (!(error instanceof ClusterUnavailable)) break;
                await new Promise(resolve => setImmediate(resolve));
            }
        }
        expect(outcomes.at(-1)).toBe('answered');
        expect(new Set(outcomes.slice(0, -1))).toEqual(new Set(outcomes.length > 1 ? ['CLUSTER_UNAVAILABLE'] : []));
    });

    for (const store of ['the same', 'an empty'] as const) {
        it(`an outage longer than the death timeout (${store} store): peers stay, same-broker calls all succeed, registrations made meanwhile are reconciled`, async () => {
            nats = await NatsServer.start();
            const cluster = await TestCluster.create(nats, resources);
            // The death timeout is a fraction of the outage.
            const short = { clusterHeartbeatMs: 100, clusterDeathTimeoutMs: 500 };
            const [one, two] = [await cluster.broker(short), await cluster.broker(short)];
            const { client: carol } = await resources.servingPeer(one.url, 'carol');
            await resources.servingPeer(two.url, 'bob');
            const alice = resources.peerClient(one.url);
            await api(alice).register('alice');
            await sees(one, 'bob');
            let closed = false;
            carol.transporter.disconnected.subscribe(() => closed = true);

            await outage(() => nats!.kill(), one, two);
            expect(exchangeOf(one).brokers()[0].natsLink).toBe('down');
            // Calls between peers of one broker, in a loop, until several death timeouts have passed.
            const outageStarted = Date.now();
            let calls = 0;
            while (Date.now() - outageStarted < 6 * short.clusterDeathTimeoutMs) {
                expect(await echoOf(alice, 'carol').echo(`call ${calls}`)).toBe(`call ${calls}`);
                calls++;
            }
            // A peer that (re)connects during the outage is accepted by its broker and reachable there.
            const { client: daveOnOne } = await resources.servingPeer(one.url, 'dave');
            expect(await echoOf(alice, 'dave').echo('new here')).toBe('new here');
            // The same ID claimed on the other broker meanwhile: both brokers accept; NATS decides one holder later.
            const { client: daveOnTwo } = await resources.servingPeer(two.url, 'dave');
            const daveClosed = [daveOnOne, daveOnTwo].map(client => new Promise<void>(resolve => client.transporter.disconnected.subscribe(() => resolve())));

            await nats!.restart({ emptyStore: store === 'an empty' });
            await recovered(one);
            await recovered(two);
            expect(closed).toBe(false);
            expect(await echoOf(alice, 'carol').echo('after')).toBe('after');
            expect(await echoOf(alice, 'bob').echo('after')).toBe('after');
            // One holder of dave, the same on both brokers; the loser's connection was told it was replaced.
            await eventually(() => exchangeOf(one).lookup('dave')?.connectionId === exchangeOf(two).lookup('dave')?.connectionId);
            const holder = exchangeOf(one).lookup('dave')!.brokerId;
            await daveClosed[holder === exchangeOf(one).brokerId ? 1 : 0];
            expect(await echoOf(resources.peerClient(two.url), 'dave').echo('one holder')).toBe('one holder');
        });
    }
});
