import { rpc } from '@deepkit/rpc';
import { Observable } from 'rxjs';
import { toArray } from 'rxjs/operators';
import { firstValueFrom } from 'rxjs';
import { PeerIdTaken, PeerNotFound, PeerOffline } from '../../shared';
import { api, EchoController, echoOf, Resources } from '../helpers';
import { describeOnEveryBus, exchangeOf, forgets, sees, usesClusterOn } from './cluster-fixture';

@rpc.controller('test/ticks')
class TicksController {
    @rpc.action()
    count(to: number): Observable<number> {
        return new Observable(subscriber => {
            for (let i = 1; i <= to; i++) subscriber.next(i);
            subscriber.complete();
        });
    }
}

const resources = new Resources();

describeOnEveryBus('Cluster: brokers on one bus serve one peer namespace', bus => {
    const setup = usesClusterOn(bus, resources);

    it('a peer on one broker calls a peer on another, which knows the verified caller', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        await resources.servingPeer(two.url, 'bob');
        const alice = resources.peerClient(one.url);
        await api(alice).register('alice');
        await sees(one, 'bob', exchangeOf(two).brokerId);

        expect(await echoOf(alice, 'bob').echo('across')).toBe('across');
        expect(await echoOf(alice, 'bob').whoCalls()).toEqual({ peerId: 'alice', session: 'anonymous' });
        // Many calls at once, batched between the brokers, each answered.
        const answers = await Promise.all([...Array(200).keys()].map(i => echoOf(alice, 'bob').echo(`call ${i}`)));
        expect(answers).toEqual([...Array(200).keys()].map(i => `call ${i}`));
    });

    it('an unknown peer is PeerNotFound at once; a peer gone from another broker is PeerOffline', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        const alice = resources.peerClient(one.url);
        await api(alice).register('alice');
        await expect(echoOf(alice, 'nobody').echo('x')).rejects.toBeInstanceOf(PeerNotFound);

        const { client: bob } = await resources.servingPeer(two.url, 'bob');
        await sees(one, 'bob');
        await bob.disconnect();
        await forgets(one, 'bob');
        await expect(echoOf(alice, 'bob').echo('x')).rejects.toBeInstanceOf(PeerOffline);
    });

    it('observables stream across brokers', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        const { client: bob } = await resources.servingPeer(two.url, 'bob');
        bob.peerKernel!.registerController(TicksController, 'test/ticks');
        const alice = resources.peerClient(one.url);
        await api(alice).register('alice');
        await sees(one, 'bob');
        const ticks = await alice.peer('bob').controller<TicksController>('test/ticks').count(5);
        expect(await firstValueFrom(ticks.pipe(toArray()))).toEqual([1, 2, 3, 4, 5]);
    });

    it('presence of a peer on another broker reaches every broker, in the same order', async () => {
        const [one, two, three] = [await setup.cluster.broker(), await setup.cluster.broker(), await setup.cluster.broker()];
        const seen = [one, two, three].map(broker => {
            const events: string[] = [];
            exchangeOf(broker).presence.subscribe(event => events.push(`${event.kind} ${event.peerId}`));
            return events;
        });
        const { client: bob } = await resources.servingPeer(two.url, 'bob');
        await api(bob).announce(['chat']);
        const { client: carol } = await resources.servingPeer(three.url, 'carol');
        await bob.disconnect();
        await carol.disconnect();
        for (const broker of [one, two, three]) {
            await forgets(broker, 'bob');
            await forgets(broker, 'carol');
            await exchangeOf(broker).settled();
        }
        expect(seen[0]).toEqual(seen[1]);
        expect(seen[1]).toEqual(seen[2]);
        expect(seen[0].filter(event => event.endsWith('bob'))).toEqual(['online bob', 'capabilities bob', 'offline bob']);
    });

    it('two brokers racing to register one ID: exactly one wins, 200 races out of 200', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        // Eight pairs of clients (one on each broker) race side by side, 25 IDs each.
        const pairs = [...Array(8).keys()].map(() => [resources.peerClient(one.url), resources.peerClient(two.url)]);
        // Connected before the races, so both requests of a race leave together.
        await Promise.all(pairs.flat().map(client => api(client).whoami()));
        const wins: number[] = [];
        await Promise.all(pairs.map(async ([first, second], pair) => {
            for (let race = 0; race < 25; race++) {
                const id = `race-${pair}-${race}`;
                const outcomes = await Promise.allSettled([api(first).register(id), api(second).register(id)]);
                const winners = outcomes.filter(outcome => outcome.status === 'fulfilled');
                const losers = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
                wins.push(winners.length);
                expect(losers.map(loser => loser.reason)).toEqual(winners.length === 1 ? [expect.any(PeerIdTaken)] : []);
                if (winners.length) await api(outcomes[0].status === 'fulfilled' ? first : second).deregister();
            }
        }));
        expect(wins).toEqual(Array(200).fill(1));
    });

    it('the owner takes its ID over from another broker with its reclaim secret; a stranger cannot', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        const { client: stale, registration } = await resources.servingPeer(two.url, 'bob');
        await sees(one, 'bob');
        const closed = new Promise<void>(resolve => stale.transporter.disconnected.subscribe(() => resolve()));

        const stranger = resources.peerClient(one.url);
        await expect(api(stranger).register('bob')).rejects.toBeInstanceOf(PeerIdTaken);
        await expect(api(stranger).register('bob', 'sbr_not-the-secret')).rejects.toBeInstanceOf(PeerIdTaken);

        const { registration: again } = await resources.servingPeer(one.url, 'bob', { reclaimSecret: registration.reclaimSecret });
        expect(again.tookOver).toBe(true);
        await closed;
        await sees(two, 'bob', exchangeOf(one).brokerId);

        const alice = resources.peerClient(two.url);
        await api(alice).register('alice');
        expect(await echoOf(alice, 'bob').whoCalls()).toEqual({ peerId: 'alice', session: 'anonymous' });
    });

    it('frames larger than the bus\'s max payload (1 MiB, as NATS\'s) cross brokers in parts, up to the broker\'s maxPayloadBytes', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        await resources.servingPeer(two.url, 'bob');
        const alice = resources.peerClient(one.url);
        await api(alice).register('alice');
        await sees(one, 'bob');
        const big = 'x'.repeat(1536 * 1024);
        expect(await echoOf(alice, 'bob').echo(big)).toBe(big);
        const blob = await echoOf(alice, 'bob').blob(2 * 1024 * 1024);
        expect(blob.byteLength).toBe(2 * 1024 * 1024);
        expect(blob.every(byte => byte === 7)).toBe(true);
    });

    it('a call in flight to a peer that leaves its broker ends with PeerOffline', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        const { client: bob } = await resources.servingPeer(two.url, 'bob');
        const alice = resources.peerClient(one.url);
        await api(alice).register('alice');
        await sees(one, 'bob');
        const held = echoOf(alice, 'bob').hold();
        await new Promise<void>(resolve => {
            const check = () => EchoController.held.length ? resolve() : setImmediate(check);
            check();
        });
        await bob.disconnect();
        await expect(held).rejects.toBeInstanceOf(PeerOffline);
    });
});
