import { Disconnected, Timeout } from '../../shared';
import { Peer } from '../../peer';
import { collect, EchoController, heldCalls, Resources } from '../helpers';
import { TcpProxy } from './tcp-proxy';

const resources = new Resources();
afterEach(() => resources.closeAll());

/** bob serving EchoController, and a TCP proxy to the broker that the test can cut (alice connects through it). */
async function bobAndProxy() {
    const broker = await resources.broker();
    const proxy = resources.add(await TcpProxy.start(broker.port), p => p.close());
    const bob = resources.add(await Peer.connect({ url: broker.url, id: 'bob' }), p => p.close());
    bob.expose(EchoController, EchoController.path);
    return { broker, proxy };
}

describe('Peer: the circuit breaker blames only the target', () => {
    it('after our own outage, calls to a peer that stayed online go through at once', async () => {
        const { proxy } = await bobAndProxy();
        // A long cool-down: an open circuit would still be open when alice is back.
        const alice = resources.add(await Peer.connect({
            url: proxy.url, id: 'alice',
            circuitBreaker: { failureThreshold: 3, coolDownMs: 600_000 },
            reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
        }), p => p.close());
        const echo = alice.to('bob').controller<EchoController>(EchoController.path, { timeout: 100 });
        const holding = alice.to('bob').controller<EchoController>(EchoController.path, { timeout: 60_000 });

        // Calls in flight when alice's network goes away, and calls made while it is away.
        const inFlight = [holding.hold(), holding.hold(), holding.hold()].map(call => call.catch(error => error));
        await heldCalls(3);
        const left = collect(alice.state$, 1, state => state === 'disconnected');
        proxy.cut();
        await left;
        for (const error of await Promise.all(inFlight)) expect(error).toBeInstanceOf(Disconnected);
        for (let i = 0; i < 5; i++) {
            const error = await echo.echo('while away').catch(e => e);
            expect(error).toBeInstanceOf(Timeout);
            expect(error.stage).toBe('registration');
        }
        expect(alice.circuit('bob').state).toBe('closed');

        const back = collect(alice.state$, 1, state => state === 'registered');
        proxy.accept();
        await back;
        expect(await alice.to('bob').controller<EchoController>(EchoController.path).echo('back')).toBe('back');
    });

    it('re-registering and the presence snapshot give a fresh circuit to peers the broker reports online', async () => {
        const { proxy } = await bobAndProxy();
        const alice = resources.add(await Peer.connect({
            url: proxy.url, id: 'alice',
            circuitBreaker: { failureThreshold: 1, coolDownMs: 600_000 },
            reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
        }), p => p.close());
        // bob does not answer in time: a failure of the target, the circuit opens.
        expect(await alice.to('bob').controller<EchoController>(EchoController.path, { timeout: 200 }).hold().catch(e => e)).toBeInstanceOf(Timeout);
        expect(alice.circuit('bob').state).toBe('open');

        const left = collect(alice.state$, 1, state => state === 'disconnected');
        proxy.cut();
        await left;
        const back = collect(alice.state$, 1, state => state === 'registered');
        proxy.accept();
        await back;
        expect(alice.circuit('bob').state).toBe('closed');
        expect(await alice.to('bob').controller<EchoController>(EchoController.path).echo('fresh')).toBe('fresh');
    });
});
