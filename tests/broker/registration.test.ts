import { rpc } from '@deepkit/rpc';
import { api, collect, echoOf, Resources } from '../helpers';
import { PeerIdTaken, PeerOffline } from '../../shared';

describe('registration and the peer ID lifecycle (open mode)', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('register → call → disconnect → the ID is free → the same owner re-registers and is callable again', async () => {
        const broker = await resources.broker();
        const caller = resources.peerClient(broker.url);

        const first = await resources.servingPeer(broker.url, 'bob');
        expect(first.registration.reclaimSecret).toMatch(/^sbr_/);
        expect(await echoOf(caller, 'bob').echo('one')).toBe('one');

        const presence = await api(caller).presence();
        const offline = collect(presence, 1, event => event.peerId === 'bob' && event.kind === 'offline');
        await first.client.disconnect();
        await offline;
        await expect(echoOf(caller, 'bob').echo('two')).rejects.toBeInstanceOf(PeerOffline);

        const second = await resources.servingPeer(broker.url, 'bob', { reclaimSecret: first.registration.reclaimSecret });
        expect(second.registration.peerId).toBe('bob');
        expect(await echoOf(caller, 'bob').echo('three')).toBe('three');
    });

    it('a different client trying a live ID gets PeerIdTaken, and the owner keeps it', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        const thief = resources.peerClient(broker.url);

        await expect(api(thief).register('bob')).rejects.toBeInstanceOf(PeerIdTaken);
        await expect(api(thief).register('bob', 'sbr_guessed')).rejects.toBeInstanceOf(PeerIdTaken);
        expect(await echoOf(thief, 'bob').echo('still bob')).toBe('still bob');
    });

    it('the owner with its reclaim secret takes over a live (stale) registration', async () => {
        const broker = await resources.broker();
        const stale = await resources.servingPeer(broker.url, 'bob');
        const closed = new Promise<void>(resolve => stale.client.transporter.disconnected.subscribe(() => resolve()));

        const fresh = await resources.servingPeer(broker.url, 'bob', { reclaimSecret: stale.registration.reclaimSecret });
        expect(fresh.registration.tookOver).toBe(true);
        await closed;

        const caller = resources.peerClient(broker.url);
        expect(await echoOf(caller, 'bob').echo('to the new connection')).toBe('to the new connection');
    });

    it('refuses IDs outside the pattern with InvalidPeerId and stays up', async () => {
        const broker = await resources.broker();
        const client = resources.peerClient(broker.url);
        for (const bad of ['', 'has space', 'x'.repeat(65), 'ümlaut', 'slash/id']) {
            await expect(api(client).register(bad)).rejects.toThrow();
        }
        // A stock client cannot decode Switchboard's classes: it gets the code at the start of the message.
        await expect(resources.stockClient(broker.url).registerAsPeer('has space')).rejects.toThrow(/^INVALID_PEER_ID: /);
        expect((await api(client).register('fine-id_1.2')).peerId).toBe('fine-id_1.2');
    });

    it('one ID per connection: a second ID is refused until the first is deregistered', async () => {
        const broker = await resources.broker();
        const client = resources.peerClient(broker.url);
        await api(client).register('first');
        await expect(api(client).register('second')).rejects.toThrow(/already/);
        await api(client).deregister();
        expect((await api(client).register('second')).peerId).toBe('second');
        expect((await api(client).getPeer('first')).online).toBe(false);
    });
});

@rpc.controller('stock/math')
class StockMathController {
    @rpc.action()
    add(a: number, b: number): number {
        return a + b;
    }
}

describe('stock @deepkit/rpc clients', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('register, expose a peer controller and call peers through the broker', async () => {
        const broker = await resources.broker();
        const server = resources.stockClient(broker.url);
        const registered = server.registerAsPeer('stock-server');
        await registered;
        server.registerPeerController(StockMathController, 'stock/math');

        const caller = resources.stockClient(broker.url);
        expect(await caller.peer('stock-server').controller<StockMathController>('stock/math').add(2, 3)).toBe(5);
        await expect(caller.peer('stock-nobody').controller<StockMathController>('stock/math').add(1, 1)).rejects.toThrow(/^PEER_NOT_FOUND: /);

        // The broker-side fixes apply: the stock client's ID is released when it deregisters, and can be taken again.
        await (await registered).deregister();
        await server.disconnect();
        const again = resources.stockClient(broker.url);
        await again.registerAsPeer('stock-server');
        again.registerPeerController(StockMathController, 'stock/math');
        expect(await caller.peer('stock-server').controller<StockMathController>('stock/math').add(20, 22)).toBe(42);
    });

    it('a stock client gets PeerIdTaken for a live ID', async () => {
        const broker = await resources.broker();
        await resources.stockClient(broker.url).registerAsPeer('taken');
        await expect(resources.stockClient(broker.url).registerAsPeer('taken')).rejects.toThrow(/^PEER_ID_TAKEN: /);
    });
});
