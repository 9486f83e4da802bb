import { BrokerProcess } from '../../bench/chaos/broker-process';
import { ClusterUnavailable, Disconnected, PeerOffline, Timeout } from '../../shared';
import { Peer } from '../../peer';
import { collect, EchoController, eventually, heldCalls, Resources } from '../helpers';
import { exchangeOf, recovered, sees, usesCluster } from '../cluster/cluster-fixture';
import { describeWithNats } from '../cluster/nats-server';
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

describeWithNats('Peer: the circuit breaker and a cluster', () => {
    const fixture = usesCluster(resources);

    it("a call that fails after its target came back on another broker does not open the target's circuit", async () => {
        // The death timeout is long next to a reconnect: bob is back on the live broker well before the calls held
        // on the killed one fail.
        const death = { clusterHeartbeatMs: 100, clusterDeathTimeoutMs: 2_000 };
        const [live, doomed] = await Promise.all([
            fixture.cluster.broker(death),
            BrokerProcess.start(':memory:', fixture.cluster.flags(death)).then(broker => resources.add(broker, child => child.kill())),
        ]);
        const bob = resources.add(await Peer.connect({ url: [doomed.url, live.url], id: 'bob', reconnect: { initialDelayMs: 10, maxDelayMs: 50 } }), p => p.close());
        bob.expose(EchoController, EchoController.path);
        const alice = resources.add(await Peer.connect({ url: live.url, id: 'alice', circuitBreaker: { failureThreshold: 1, coolDownMs: 600_000 } }), p => p.close());
        const holding = alice.to('bob').controller<EchoController>(EchoController.path, { timeout: 60_000 });
        const inFlight = holding.hold().catch(error => error);
        await heldCalls(1);

        const bobBack = collect(alice.presence$, 1, event => event.peerId === 'bob' && event.kind === 'online');
        await doomed.kill();
        await bobBack;
        // Failed by the cluster for what happened before bob came back, not by bob now.
        expect(await inFlight).toBeInstanceOf(PeerOffline);
        expect(alice.circuit('bob').state).toBe('closed');
        expect(await alice.to('bob').controller<EchoController>(EchoController.path).echo('back')).toBe('back');
    });

    it('calls that fail while our broker has lost NATS (ClusterUnavailable) never open the circuit', async () => {
        const survivesOutage = { clusterHeartbeatMs: 100, clusterDeathTimeoutMs: 20_000 };
        const [one, two] = [await fixture.cluster.broker(survivesOutage), await fixture.cluster.broker(survivesOutage)];
        const bob = resources.add(await Peer.connect({ url: two.url, id: 'bob' }), p => p.close());
        bob.expose(EchoController, EchoController.path);
        const alice = resources.add(await Peer.connect({ url: one.url, id: 'alice', circuitBreaker: { failureThreshold: 1, coolDownMs: 600_000 } }), p => p.close());
        await sees(one, 'bob');
        const echo = alice.to('bob').controller<EchoController>(EchoController.path);

        await fixture.nats.kill();
        await eventually(() => !exchangeOf(one).connected, 10_000);
        for (let i = 0; i < 3; i++) expect(await echo.echo('cut off').catch(e => e)).toBeInstanceOf(ClusterUnavailable);
        expect(alice.circuit('bob').state).toBe('closed');

        await fixture.nats.restart();
        await recovered(one);
        await recovered(two);
        expect(await echo.echo('back')).toBe('back');
    });
});
