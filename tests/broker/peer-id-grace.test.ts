import { api, collect, Resources } from '../helpers';
import { PeerIdTaken } from '../../shared';
import { Peer } from '../../peer';
import { TokenStore } from '../../server';

/** Resolves once the broker has seen `peerId` go offline. */
async function offline(resources: Resources, url: string, peerId: string, token?: string): Promise<() => Promise<unknown>> {
    const watcher = resources.peerClient(url, token);
    const events = collect(await api(watcher).presence(), 1, event => event.peerId === peerId && event.kind === 'offline');
    return () => events;
}

describe('a released peer ID cannot be grabbed at once (grace hold)', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('open mode: after a lost connection only the reclaim secret registers the ID within peerIdGraceMs; anyone else gets PeerIdTaken with heldUntil', async () => {
        const broker = await resources.broker();
        const first = await resources.servingPeer(broker.url, 'bob');
        const wentOffline = await offline(resources, broker.url, 'bob');
        // No deregister: a crash or a cut, as the broker sees it.
        await first.client.disconnect();
        await wentOffline();

        const thief = resources.peerClient(broker.url);
        const refused = await api(thief).register('bob').catch(error => error);
        expect(refused).toBeInstanceOf(PeerIdTaken);
        expect((refused as PeerIdTaken).heldUntil!.getTime()).toBeGreaterThan(Date.now() + 20_000);
        expect((refused as PeerIdTaken).message).toMatch(/held for its owner/);
        // The registry lists the hold.
        expect((await api(thief).getPeer('bob')).heldUntil).toEqual((refused as PeerIdTaken).heldUntil);

        const back = await resources.servingPeer(broker.url, 'bob', { reclaimSecret: first.registration.reclaimSecret });
        expect(back.registration.peerId).toBe('bob');
    });

    it('peerIdGraceMs 0 releases the ID of a lost connection at once', async () => {
        const broker = await resources.broker({ peerIdGraceMs: 0 });
        const first = await resources.servingPeer(broker.url, 'bob');
        const wentOffline = await offline(resources, broker.url, 'bob');
        await first.client.disconnect();
        await wentOffline();
        expect((await api(resources.peerClient(broker.url)).register('bob')).peerId).toBe('bob');
    });

    it('token mode: the owning token gets the ID back within the grace period, another token does not', async () => {
        const broker = await resources.broker({ auth: 'token' });
        const tokens = broker.app.get(TokenStore);
        const bobToken = await tokens.create('bob-app', { peerIds: ['bob', 'bob-*'] });
        const otherToken = await tokens.create('other-app', { peerIds: ['bob', 'bob-*'] });
        const admin = await tokens.create('ops', { peerIds: [], admin: true });
        const first = await resources.servingPeer(broker.url, 'bob', { token: bobToken });
        const wentOffline = await offline(resources, broker.url, 'bob', admin);
        await first.client.disconnect();
        await wentOffline();

        await expect(api(resources.peerClient(broker.url, otherToken)).register('bob')).rejects.toBeInstanceOf(PeerIdTaken);
        expect((await api(resources.peerClient(broker.url, bobToken)).register('bob')).peerId).toBe('bob');
    });

    it('a clean deregister, and Peer.close(), release the ID at once', async () => {
        const broker = await resources.broker();
        const first = await resources.servingPeer(broker.url, 'bob');
        await api(first.client).deregister();
        await first.client.disconnect();
        expect((await api(resources.peerClient(broker.url)).register('bob')).peerId).toBe('bob');

        const carol = await Peer.connect({ url: broker.url, id: 'carol' });
        await carol.close();
        expect((await api(resources.peerClient(broker.url)).register('carol')).peerId).toBe('carol');
    });
});
