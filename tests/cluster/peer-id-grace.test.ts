import { PeerIdTaken } from '../../shared';
import { api, Resources } from '../helpers';
import { describeOnEveryBus, exchangeOf, forgets, sees, usesClusterOn } from './cluster-fixture';

const resources = new Resources();

describeOnEveryBus('Cluster: a peer ID whose connection was lost is held for its owner on every broker', bus => {
    const setup = usesClusterOn(bus, resources);

    it('lost on one broker: a thief on another gets PeerIdTaken, the owner (reclaim secret) gets it back there; a clean deregister frees it for anyone', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        const first = await resources.servingPeer(one.url, 'bob');
        await sees(two, 'bob');
        // A crash or a cut: no deregister.
        await first.client.disconnect();
        await forgets(two, 'bob');
        await exchangeOf(one).settled();

        const refused = await api(resources.peerClient(two.url)).register('bob').catch(error => error);
        expect(refused).toBeInstanceOf(PeerIdTaken);
        expect((refused as PeerIdTaken).heldUntil).toBeInstanceOf(Date);

        const back = await resources.servingPeer(two.url, 'bob', { reclaimSecret: first.registration.reclaimSecret });
        expect(back.registration.peerId).toBe('bob');
        await sees(one, 'bob', exchangeOf(two).brokerId);

        // Deregistered cleanly, the ID is anyone's at once, on the other broker too.
        await api(back.client).deregister();
        await forgets(one, 'bob');
        await exchangeOf(two).settled();
        expect((await api(resources.peerClient(one.url)).register('bob')).peerId).toBe('bob');
    });
});
