import { firstValueFrom } from 'rxjs';
import { filter, take, toArray } from 'rxjs/operators';
import { QuotaExceeded, RelayEnvelope, RelayPayload } from '../../shared';
import { startSwitchboard } from '../../testing/test-kit';
import { collect, eventually, wentOffline } from '../helpers';

/** A peer that uses "relay": only a relay it trusts may vouch for original senders and report deliveries. */
const usingRelay = (id: string) => ({ id, relay: { trustedRelays: ['relay'] } });


describe('relay and store-and-forward', () => {
    it('forward: the recipient sees the verified original sender and the relay that carried it', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'relay', usingRelay('bob')] });
        const received = firstValueFrom(kit.peer('bob').relay.received$);
        const receipt = await kit.peer('alice').to('relay').relay.forward('bob', new RelayPayload('p-1', 'note', 'hello via relay'));
        expect(receipt).toMatchObject({ payloadId: 'p-1', recipient: 'bob', via: 'relay' });
        expect(await received).toMatchObject({ originalSender: 'alice', via: 'relay', recipient: 'bob', payload: { id: 'p-1', body: 'hello via relay' } });
    });

    it('a direct delivery cannot name another carrier: the carrier is the verified caller', async () => {
        await using kit = await startSwitchboard({ peers: ['mallory', 'bob'] });
        const received = firstValueFrom(kit.peer('bob').relay.received$);
        await kit.peer('mallory').to('bob').relay.deliver(new RelayEnvelope(new RelayPayload('p-2', 'note', 'trust me'), 'mallory', 'bob', 'some-relay'));
        expect(await received).toMatchObject({ originalSender: 'mallory', via: 'mallory' });
    });

    it('store-and-forward while the original sender is gone; the receipt reaches the sender when it is back', async () => {
        await using kit = await startSwitchboard({ peers: ['relay', usingRelay('alice'), usingRelay('bob')] });
        const relay = kit.peer('relay');
        const bobGone = wentOffline(relay, 'bob');
        await kit.peer('bob').close();
        await bobGone;

        const stored = await kit.peer('alice').to('relay').relay.store('bob', new RelayPayload('p-3', 'note', 'kept for you'), 3600);
        expect(stored.payloadId).toBe('p-3');
        const aliceGone = wentOffline(relay, 'alice');
        await kit.peer('alice').close();
        await aliceGone;
        expect(await relay.relay.heldFor('bob')).toBe(1);

        const bob = await kit.addPeer(usingRelay('bob'));
        // It may arrive while bob is still connecting: the inbox keeps it for the app either way.
        await eventually(async () => (await bob.relay.inbox()).length === 1);
        expect((await bob.relay.inbox())[0]).toMatchObject({ originalSender: 'alice', via: 'relay', payload: { body: 'kept for you' } });

        // The receipt waits at the relay until alice is back.
        await eventually(async () => (await relay.outbox.pending('alice')).length === 1);
        let receipt!: Promise<unknown>;
        await kit.addPeer(usingRelay('alice'), peer => { receipt = firstValueFrom(peer.relay.receipts$); });
        expect(await receipt).toMatchObject({ payloadId: 'p-3', recipient: 'bob', via: 'relay' });
    });

    it('pull: the recipient takes what is held for it, exactly once however it arrives', async () => {
        await using kit = await startSwitchboard({ peers: ['relay', 'alice', usingRelay('bob')] });
        const bobGone = wentOffline(kit.peer('relay'), 'bob');
        await kit.peer('bob').close();
        await bobGone;
        for (const id of ['a', 'b']) await kit.peer('alice').to('relay').relay.store('bob', new RelayPayload(id, 'note', `payload ${id}`));

        // Subscribed before it starts: the relay may push while bob is still registering.
        const pushed: RelayEnvelope[] = [];
        const bob = await kit.addPeer(usingRelay('bob'), peer => peer.relay.received$.subscribe(envelope => pushed.push(envelope)));
        const pulled = await bob.to('relay').relay.pull();
        await eventually(async () => await kit.peer('relay').relay.heldFor('bob') === 0);
        const ids = [...pulled, ...pushed].map(e => e.payload.id).sort();
        expect(ids).toEqual(['a', 'b']);
    });

    it('the per-sender quota is enforced with QuotaExceeded', async () => {
        await using kit = await startSwitchboard({ peers: [{ id: 'relay', relay: { quotaPerSender: 2 } }, 'alice'] });
        const relay = kit.peer('alice').to('relay').relay;
        await relay.store('ghost', new RelayPayload('q1', 'note', '1'));
        await relay.store('ghost', new RelayPayload('q2', 'note', '2'));
        await relay.store('ghost', new RelayPayload('q2', 'note', '2 again'));
        const error = await relay.store('ghost', new RelayPayload('q3', 'note', '3')).catch(e => e);
        expect(error).toBeInstanceOf(QuotaExceeded);
        expect(error.limit).toBe(2);
    });

    it('an expired payload is dropped, not delivered', async () => {
        // The TTL runs on the relay's clock, which the test moves instead of waiting.
        let now = Date.now();
        await using kit = await startSwitchboard({ peers: [{ id: 'relay', clock: () => now }, 'alice'] });
        const { expiresAt } = await kit.peer('alice').to('relay').relay.store('late-bob', new RelayPayload('old', 'note', 'stale'), 60);
        expect(expiresAt.getTime()).toBe(now + 60_000);
        now += 60_000;
        const bob = await kit.addPeer('late-bob');
        expect(await bob.to('relay').relay.pull()).toEqual([]);
    });

    it('the recipient takes a payload delivered twice only once', async () => {
        await using kit = await startSwitchboard({ peers: ['relay', usingRelay('bob')] });
        const envelope = new RelayEnvelope(new RelayPayload('dup', 'note', 'once'), 'alice', 'bob', 'relay');
        const seen = firstValueFrom(kit.peer('bob').relay.received$.pipe(take(1), toArray()));
        await kit.peer('relay').to('bob').relay.deliver(envelope);
        await kit.peer('relay').to('bob').relay.deliver(envelope);
        expect((await seen).length).toBe(1);
        const second = await Promise.race([firstValueFrom(kit.peer('bob').relay.received$.pipe(filter(e => e.payload.id === 'dup'))), kit.peer('relay').to('bob').relay.deliver(envelope).then(() => 'no second delivery')]);
        expect(second).toBe('no second delivery');
    });
});
