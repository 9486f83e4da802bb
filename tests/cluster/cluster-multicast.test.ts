import { rpc } from '@deepkit/rpc';
import { Peer } from '../../peer';
import { RateLimited } from '../../shared';
import { api, eventually, Resources } from '../helpers';
import { describeOnEveryBus, exchangeOf, sees, usesClusterOn } from './cluster-fixture';

const resources = new Resources();

/** Counts what reaches it, and how many bytes. */
@rpc.controller('test/inbox')
class InboxController {
    static calls = 0;
    static bytes = 0;

    @rpc.action()
    take(body: Uint8Array): number {
        InboxController.calls++;
        InboxController.bytes += body.byteLength;
        return body.byteLength;
    }
}

describeOnEveryBus('Cluster: a multicast across brokers', bus => {
    const setup = usesClusterOn(bus, resources);

    beforeEach(() => {
        InboxController.calls = InboxController.bytes = 0;
    });

    it('one frame naming a peer on another broker 10,000 times (128 KiB body): one copy crosses, reported as forwarded, and the broker answers /health', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        resources.add(await Peer.connect({ url: two.url, id: 'bob', expose: [[InboxController, 'test/inbox']] }), peer => peer.close());
        const attacker = resources.peerClient(one.url);
        await api(attacker).register('attacker');
        await sees(one, 'bob', exchangeOf(two).brokerId);
        const published = exchangeOf(one).bytesPublished;

        const body = new Uint8Array(128 * 1024).fill(1);
        const health = fetch(`${one.httpUrl}/health`);
        const result = await attacker.multicast(Array(10_000).fill('bob'), 'test/inbox', 'take', [body], { timeout: 30_000 });
        expect((await health).status).toBe(200);

        expect(result.outcomes).toEqual({ bob: 'forwarded' });
        expect([result.delivered, result.forwarded, result.failed]).toEqual([0, 1, 0]);
        // One copy's bytes crossed the bus, not 10,000.
        expect(exchangeOf(one).bytesPublished - published).toBeLessThan(2 * body.byteLength);
        await eventually(() => InboxController.calls >= 1);
        expect([InboxController.calls, InboxController.bytes]).toEqual([1, body.byteLength]);
    });

    it('a multicast whose copies would pass the sender\'s byte budget is refused before anything reaches the bus', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        resources.add(await Peer.connect({ url: two.url, id: 'bob', expose: [[InboxController, 'test/inbox']] }), peer => peer.close());
        const attacker = resources.peerClient(one.url);
        await api(attacker).register('attacker');
        await sees(one, 'bob', exchangeOf(two).brokerId);
        const published = exchangeOf(one).bytesPublished;

        // 1,000 distinct targets (bob and 999 names nobody holds) × 128 KiB: 125 MiB of copies, over a second's budget.
        const targets = ['bob', ...Array.from({ length: 999 }, (_, i) => `nobody-${i}`)];
        await expect(attacker.multicast(targets, 'test/inbox', 'take', [new Uint8Array(128 * 1024)], { timeout: 30_000 })).rejects.toBeInstanceOf(RateLimited);
        expect(exchangeOf(one).bytesPublished).toBe(published);
        expect(InboxController.calls).toBe(0);
    });

    it('outcomes tell where each copy went: delivered on this broker, forwarded to another; replies come from both', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        const expose: [typeof InboxController, string][] = [[InboxController, 'test/inbox']];
        for (const [url, id] of [[one.url, 'near'], [two.url, 'far-1'], [two.url, 'far-2']]) {
            resources.add(await Peer.connect({ url, id, expose }), peer => peer.close());
        }
        const alice = resources.add(await Peer.connect({ url: one.url, id: 'alice' }), peer => peer.close());
        await sees(one, 'far-1', exchangeOf(two).brokerId);
        await sees(one, 'far-2', exchangeOf(two).brokerId);

        const result = await alice.broadcast<number>(['near', 'far-1', 'far-2', 'nobody'], 'test/inbox', 'take', [new Uint8Array(3)], { collectReplies: true });
        expect(result.outcomes).toEqual({ 'near': 'delivered', 'far-1': 'forwarded', 'far-2': 'forwarded', 'nobody': 'not-found' });
        expect([result.delivered, result.forwarded, result.failed]).toEqual([1, 2, 1]);
        expect(result.replies).toEqual({ 'near': { result: 3 }, 'far-1': { result: 3 }, 'far-2': { result: 3 } });
    });
});
