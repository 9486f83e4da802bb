import { firstValueFrom, Observable } from 'rxjs';
import { filter } from 'rxjs/operators';
import { PresenceBatch, PresenceEvent, QuotaExceeded } from '../../shared';
import { startSwitchboard } from '../../testing/test-kit';
import { api, collect, Resources } from '../helpers';

/** Every event of the batches until `until` matches one, in arrival order. */
async function eventsUntil(batches: Observable<PresenceBatch>, until: (event: PresenceEvent) => boolean): Promise<{ events: PresenceEvent[], batches: number }> {
    const events: PresenceEvent[] = [];
    let count = 0;
    await firstValueFrom(batches.pipe(filter(batch => {
        count++;
        events.push(...batch.events);
        return batch.events.some(until);
    })));
    return { events, batches: count };
}

describe('presence by interest (watch, presenceBatches)', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('a connection hears only of the IDs it watches: nothing of a peer it does not watch', async () => {
        const broker = await resources.broker();
        const watcher = resources.peerClient(broker.url);
        expect(await api(watcher).watch(['bob'])).toMatchObject([{ kind: 'offline', peerId: 'bob', sequence: 0 }]);
        const stream = await api(watcher).presenceBatches();
        const seen = eventsUntil(stream, event => event.peerId === 'bob' && event.kind === 'offline' && event.sequence > 0);

        const carol = await resources.servingPeer(broker.url, 'carol');
        await carol.client.disconnect();
        const bob = await resources.servingPeer(broker.url, 'bob');
        await api(bob.client).announce(['chat']);
        await bob.client.disconnect();

        const { events } = await seen;
        expect(events.map(event => [event.kind, event.peerId])).toEqual([['offline', 'bob'], ['online', 'bob'], ['capabilities', 'bob'], ['offline', 'bob']]);
        const sequences = events.map(event => event.sequence);
        expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    });

    it('the snapshot holds the watched IDs\' state (or everyone online) and ends synced; watch answers the state now', async () => {
        const broker = await resources.broker();
        const early = await resources.servingPeer(broker.url, 'early');
        await api(early.client).announce(['relay']);
        await resources.servingPeer(broker.url, 'other');
        const watcher = resources.peerClient(broker.url);
        await api(watcher).watch(['early', 'never-seen']);

        const [snapshot] = await collect(await api(watcher).presenceBatches(), 1);
        expect(snapshot.synced).toBe(true);
        expect(snapshot.events.map(event => [event.kind, event.peerId, event.capabilities])).toEqual([['online', 'early', ['relay']], ['offline', 'never-seen', []]]);

        const [everyone] = await collect(await api(resources.peerClient(broker.url)).presenceBatches(true), 1);
        expect(everyone.synced).toBe(true);
        expect(everyone.events.map(event => event.peerId).sort()).toEqual(['early', 'other']);

        expect(await api(watcher).watch(['other'])).toMatchObject([{ kind: 'online', peerId: 'other', sequence: 0 }]);
    });

    it('unwatch stops the events of an ID; a watch past the limit per connection is QuotaExceeded', async () => {
        const broker = await resources.broker();
        const watcher = resources.peerClient(broker.url);
        await api(watcher).watch(['gone', 'stays']);
        const stream = await api(watcher).presenceBatches();
        await api(watcher).unwatch(['gone']);
        const seen = eventsUntil(stream, event => event.peerId === 'stays');
        await resources.servingPeer(broker.url, 'gone');
        await resources.servingPeer(broker.url, 'stays');
        expect((await seen).events.map(event => event.peerId)).toEqual(['stays']);

        const many = Array.from({ length: 1000 }, (_, index) => `p${index}`);
        // 'stays' and 9,999 more: the limit of 10,000.
        for (let round = 0; round < 10; round++) await api(watcher).watch(many.slice(round === 0 ? 1 : 0).map(id => `${id}-${round}`));
        const refused = await api(watcher).watch(['one-too-many']).catch(error => error);
        expect(refused).toBeInstanceOf(QuotaExceeded);
        expect(refused.message).toContain('Unwatch');
    });

    it('an SDK peer follows whom it deals with by default, everyone with presence: "all", nobody with false', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', { id: 'everyone', presence: 'all' }, { id: 'quiet', presence: false }] });
        const alice = kit.peer('alice');
        alice.to('bob');
        const aliceEvents: PresenceEvent[] = [];
        alice.presence$.subscribe(event => aliceEvents.push(event));
        const quietEvents: PresenceEvent[] = [];
        kit.peer('quiet').presence$.subscribe(event => quietEvents.push(event));
        const everyoneSawStranger = collect(kit.peer('everyone').presence$, 1, event => event.peerId === 'stranger' && event.kind === 'online');
        const aliceSawBob = collect(alice.presence$, 1, event => event.peerId === 'bob' && event.kind === 'online' && event.sequence > 0);

        await kit.addPeer('stranger');
        await everyoneSawStranger;
        await kit.addPeer('bob');
        await aliceSawBob;

        expect(aliceEvents.filter(event => event.peerId === 'stranger')).toEqual([]);
        expect(quietEvents).toEqual([]);
    });
});
