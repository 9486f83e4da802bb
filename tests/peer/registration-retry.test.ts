import { Peer } from '../../peer';
import { PeerTokenStore } from '../../server/registry/token-store';
import { PeerIdTaken, Timeout } from '../../shared';
import { collect, eventually, Resources } from '../helpers';
import { exchangeOf, recovered, usesCluster } from '../cluster/cluster-fixture';
import { describeWithNats } from '../cluster/nats-server';

const resources = new Resources();
/** Long enough that the outage below is not a death. */
const SURVIVES_OUTAGE = { clusterHeartbeatMs: 100, clusterDeathTimeoutMs: 20_000 };
const fast = { initialDelayMs: 20, maxDelayMs: 200 };

describeWithNats('Peer: registration retries what a broker could not do yet', () => {
    const fixture = usesCluster(resources);

    it('a broker cut off from NATS cannot admit us yet: connect retries on its own and registers once NATS is back', async () => {
        // Token mode: the tokens live in the cluster, so a broker cut off from NATS cannot check one (Timeout).
        const broker = await fixture.cluster.broker({ ...SURVIVES_OUTAGE, auth: 'token' });
        const token = await broker.app.get<PeerTokenStore>().create('alice-app', { peerIds: ['alice'] });
        await fixture.nats.kill();
        await eventually(() => !exchangeOf(broker).connected, 10_000);

        const alice = resources.add(Peer.create({ url: broker.url, id: 'alice', token, reconnect: fast, connectTimeoutMs: 60_000 }), p => p.close());
        const firstFailure = collect(alice.errors$, 1);
        const started = alice.start();
        // The broker answered, but could not check the token while the cluster is out of reach.
        expect((await firstFailure)[0]).toBeInstanceOf(Timeout);
        await fixture.nats.restart();
        await recovered(broker);
        await started;
        expect(alice.state).toBe('registered');
    });

    it('a refusal still ends connect at once', async () => {
        const broker = await fixture.cluster.broker();
        resources.add(await Peer.connect({ url: broker.url, id: 'bob' }), p => p.close());
        const errors: Error[] = [];
        const second = Peer.create({ url: broker.url, id: 'bob', connectTimeoutMs: 60_000 });
        second.errors$.subscribe(error => errors.push(error));
        await expect(second.start()).rejects.toBeInstanceOf(PeerIdTaken);
        expect(errors).toEqual([]);
    });
});
