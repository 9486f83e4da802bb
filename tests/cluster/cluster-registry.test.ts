import { AuditLog } from '../../server/registry/audit-log';
import { formatAuditEvent } from '../../server/commands';
import { api, echoOf, eventually, Resources } from '../helpers';
import { describeOnEveryBus, exchangeOf, sees, usesClusterOn } from './cluster-fixture';

const resources = new Resources();

describeOnEveryBus('Cluster: the registry is the cluster\'s, the audit trail names its broker', bus => {
    const setup = usesClusterOn(bus, resources);

    it('a broker started after a peer went offline lists it, with its first seen and capabilities', async () => {
        const one = await setup.cluster.broker();
        const bob = await resources.servingPeer(one.url, 'bob');
        await api(bob.client).announce(['chat', 'files']);
        const firstSeen = (await api(bob.client).getPeer('bob')).firstSeen;
        await bob.client.disconnect();
        await one.close();

        // Its own SQLite is empty: what it knows of bob comes from the setup.cluster.
        const two = await setup.cluster.broker();
        const watcher = resources.peerClient(two.url);
        const known = await api(watcher).getPeer('bob');
        expect([known.online, known.capabilities, known.firstSeen]).toEqual([false, ['chat', 'files'], firstSeen]);
        expect((await api(watcher).listPeers({ online: false })).map(peer => peer.id)).toEqual(['bob']);

        // Back on the new broker, it is the same peer: first seen is kept. (Its connection was lost, so the ID is held
        // for it: it comes back with its reclaim secret.)
        await resources.servingPeer(two.url, 'bob', { reclaimSecret: bob.registration.reclaimSecret });
        expect((await api(watcher).getPeer('bob')).firstSeen).toEqual(firstSeen);
    });

    it('each audit row names the broker that wrote it', async () => {
        const [one, two] = [await setup.cluster.broker({ brokerId: 'b1' }), await setup.cluster.broker({ brokerId: 'b2' })];
        await resources.servingPeer(two.url, 'bob');
        const alice = await resources.servingPeer(one.url, 'alice');
        await sees(one, 'bob', 'b2');
        expect(await echoOf(alice.client, 'bob').echo('hi')).toBe('hi');

        const [call] = await one.app.get(AuditLog).query({ kind: 'call' });
        expect([call.peerId, call.target, call.brokerId]).toEqual(['alice', 'bob', exchangeOf(one).brokerId]);
        expect(formatAuditEvent(call)).toContain('broker b1');
        const [registered] = await two.app.get(AuditLog).query({ kind: 'register' });
        expect([registered.peerId, registered.brokerId]).toEqual(['bob', 'b2']);
    });
});
