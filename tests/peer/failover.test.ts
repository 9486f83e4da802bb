import { createServer } from 'net';
import { Disconnected } from '../../shared';
import { Peer } from '../../peer';
import { collect, EchoController, Resources } from '../helpers';
import { peerInternals } from '../../peer/internal';

const resources = new Resources();
afterEach(() => resources.closeAll());

/** A WebSocket URL nobody listens on: a port the OS handed out and that is closed again. */
async function deadUrl(): Promise<string> {
    const server = createServer();
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>(resolve => server.close(() => resolve()));
    return `ws://127.0.0.1:${port}`;
}

const fastReconnect = { initialDelayMs: 10, maxDelayMs: 50 };

describe('Peer: several broker URLs', () => {
    it('connects to the first broker that answers', async () => {
        const dead = await deadUrl();
        const broker = await resources.broker();
        const alice = resources.add(await Peer.connect({ url: [dead, broker.url], id: 'alice' }), p => p.close());
        alice.expose(EchoController, EchoController.path);
        expect(alice.state).toBe('registered');
        expect(alice.brokerUrl).toBe(broker.url);

        const bob = resources.add(await Peer.connect({ url: broker.url, id: 'bob' }), p => p.close());
        expect(await bob.to('alice').controller<EchoController>(EchoController.path).echo('found')).toBe('found');
    });

    it('none answers: Disconnected naming every broker tried', async () => {
        const [first, second] = [await deadUrl(), await deadUrl()];
        const failed = await Peer.connect({ url: [first, second], id: 'alice' }).catch(error => error);
        expect(failed).toBeInstanceOf(Disconnected);
        expect(failed.message).toContain(first);
        expect(failed.message).toContain(second);
    });

    it('its broker goes away: the peer moves to the next one, registers again and is callable there', async () => {
        const first = await resources.broker();
        const second = await resources.broker();
        const alice = resources.add(await Peer.connect({ url: [first.url, second.url], id: 'alice', reconnect: fastReconnect }), p => p.close());
        alice.expose(EchoController, EchoController.path);
        expect(alice.brokerUrl).toBe(first.url);
        const brokers: (string | undefined)[] = [];
        alice.brokerUrl$.subscribe(url => brokers.push(url));
        const states: string[] = [];
        alice.state$.subscribe(state => states.push(state));
        // The current 'registered' comes first: the second one is the peer back on a broker.
        const back = collect(alice.state$, 2, state => state === 'registered');

        await first.close();
        await back;
        expect(alice.brokerUrl).toBe(second.url);
        expect(brokers).toEqual([first.url, undefined, second.url]);
        expect(states).toEqual(['registered', 'disconnected', 'connecting', 'connected', 'registered']);

        const bob = resources.add(await Peer.connect({ url: second.url, id: 'bob' }), p => p.close());
        bob.expose(EchoController, EchoController.path);
        expect(await bob.to('alice').controller<EchoController>(EchoController.path).whoCalls()).toMatchObject({ peerId: 'bob' });
        expect(await alice.to('bob').controller<EchoController>(EchoController.path).echo('moved')).toBe('moved');
        expect((await alice.broker.whoami()).peerId).toBe('alice');
    });

    it('a single URL keeps working as before: back to the same broker', async () => {
        const broker = await resources.broker();
        const alice = resources.add(await Peer.connect({ url: [broker.url], id: 'alice', reconnect: fastReconnect }), p => p.close());
        const back = collect(alice.state$, 2, state => state === 'registered');
        // The broker drops the connection (as a restart would); the peer comes back to it.
        await peerInternals(alice).client.disconnect();
        await back;
        expect(alice.brokerUrl).toBe(broker.url);
    });
});
