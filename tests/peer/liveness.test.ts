import { Disconnected } from '../../shared';
import { Peer } from '../../peer';
import { collect, EchoController, eventually, heldCalls, Resources } from '../helpers';
import { TcpProxy } from './tcp-proxy';
import { peerInternals } from '../../peer/internal';

const resources = new Resources();
afterEach(() => resources.closeAll());

describe('Peer: a dead broker connection is noticed', () => {
    it('a half-open connection: pending calls fail with Disconnected, the peer reconnects once the network is back', async () => {
        // The broker's own pings stay slow: the SDK must be the one that notices.
        const broker = await resources.broker({ pingIntervalMs: 600_000 });
        const proxy = resources.add(await TcpProxy.start(broker.port), p => p.close());
        const bob = resources.add(await Peer.connect({ url: broker.url, id: 'bob' }), p => p.close());
        bob.expose(EchoController, EchoController.path);
        const alice = resources.add(await Peer.connect({ url: proxy.url, id: 'alice', pingIntervalMs: 100, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } }), p => p.close());
        const errors: Error[] = [];
        alice.errors$.subscribe(error => errors.push(error));
        const pending = alice.to('bob').controller<EchoController>(EchoController.path, { timeout: 600_000 }).hold().catch(error => error);
        await heldCalls(1);

        const left = collect(alice.state$, 1, state => state !== 'registered');
        proxy.freeze();
        expect(await left).toEqual(['disconnected']);
        expect(await pending).toBeInstanceOf(Disconnected);
        expect(errors[0]).toBeInstanceOf(Disconnected);
        expect(errors[0].message).toContain('ping');

        const back = collect(alice.state$, 1, state => state === 'registered');
        proxy.thaw();
        await back;
        expect(await alice.to('bob').controller<EchoController>(EchoController.path).echo('back')).toBe('back');
        // A late close of the dead socket (or the broker replacing it) must not tear down the new connection.
        expect(alice.state).toBe('registered');
    });

    it('a healthy idle connection is left alone', async () => {
        const broker = await resources.broker();
        const alice = resources.add(await Peer.connect({ url: broker.url, id: 'alice', pingIntervalMs: 20 }), p => p.close());
        const states: string[] = [];
        alice.state$.subscribe(state => states.push(state));
        // Twenty ping intervals of an otherwise silent connection, counted by the broker's answers, not by a clock.
        const before = peerInternals(alice).client.clientStats.incoming;
        await eventually(() => peerInternals(alice).client.clientStats.incoming >= before + 20, 20_000);
        expect(states).toEqual(['registered']);
    });
});
