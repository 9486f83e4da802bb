import { api, collect, echoOf, EchoController, heldCalls, Resources } from '../helpers';
import { PeerNotFound, PeerOffline } from '../../shared';

/** On stock Deepkit each of these calls waits forever: the broker drops the message with a console line. */
describe('calls that cannot be delivered end at once with a typed error', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('a call to an ID nobody ever registered: PeerNotFound', async () => {
        const broker = await resources.broker();
        const caller = resources.peerClient(broker.url);
        const error = await echoOf(caller, 'ghost').echo('hello?').catch(e => e);
        expect(error).toBeInstanceOf(PeerNotFound);
        expect(error.code).toBe('PEER_NOT_FOUND');
        expect(error.peerId).toBe('ghost');
        expect(error.stack).not.toMatch(/server\//);
    });

    it('a call to a peer that just disconnected: PeerOffline with its last-seen time', async () => {
        const broker = await resources.broker();
        const caller = resources.peerClient(broker.url);
        const bob = await resources.servingPeer(broker.url, 'bob');
        expect(await echoOf(caller, 'bob').echo('hi')).toBe('hi');

        const offline = collect(await api(caller).presence(), 1, e => e.peerId === 'bob' && e.kind === 'offline');
        await bob.client.disconnect();
        await offline;

        const error = await echoOf(caller, 'bob').echo('still there?').catch(e => e);
        expect(error).toBeInstanceOf(PeerOffline);
        expect(error.peerId).toBe('bob');
        expect(error.lastSeen).toBeInstanceOf(Date);
    });

    it('a peer that disconnects while a call to it is pending: the caller gets PeerOffline', async () => {
        const broker = await resources.broker();
        const caller = resources.peerClient(broker.url);
        const bob = await resources.servingPeer(broker.url, 'bob');
        EchoController.held = [];

        const pending = echoOf(caller, 'bob').hold();
        await heldCalls(1);
        await bob.client.disconnect();

        await expect(pending).rejects.toBeInstanceOf(PeerOffline);
    });

    it('the first message of a call (the type request) fails fast too, for stock clients', async () => {
        const broker = await resources.broker();
        const stock = resources.stockClient(broker.url);
        await expect(stock.peer('ghost').controller<EchoController>(EchoController.path).echo('x')).rejects.toThrow(/^PEER_NOT_FOUND: /);
    });
});
