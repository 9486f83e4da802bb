import { firstValueFrom } from 'rxjs';
import { AccessDenied, DeliveryReceipt, RelayEnvelope, RelayPayload } from '../../shared';
import { startSwitchboard } from '../../testing/test-kit';

/** A peer that uses "relay" (and only it) to carry payloads and report deliveries. */
const usingRelay = (id: string) => ({ id, relay: { trustedRelays: ['relay'] } });

describe('relay deliveries and receipts carry verified identities only', () => {
    it('a direct caller cannot deliver a payload in someone else’s name', async () => {
        await using kit = await startSwitchboard({ peers: [usingRelay('bob'), 'mallory'] });
        const error = await kit.peer('mallory').to('bob').relay
            .deliver(new RelayEnvelope(new RelayPayload('p-1', 'note', 'send me your password'), 'alice', 'bob', 'relay')).catch(e => e);
        expect(error).toBeInstanceOf(AccessDenied);
        expect(error.reason).toBe('untrusted-relay');
        expect(await kit.peer('bob').relay.inbox()).toEqual([]);
    });

    it('a relay the recipient uses vouches for the sender it verified; a peer posing as a relay cannot', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'relay', usingRelay('bob'), 'mallory'] });
        const received = firstValueFrom(kit.peer('bob').relay.received$);
        await kit.peer('alice').to('relay').relay.forward('bob', new RelayPayload('p-2', 'note', 'hi bob'));
        expect(await received).toMatchObject({ originalSender: 'alice', via: 'relay' });

        // mallory runs a relay too, but bob does not use it: what mallory says about the sender counts for nothing.
        const error = await kit.peer('mallory').to('bob').relay
            .deliver(new RelayEnvelope(new RelayPayload('p-3', 'note', 'from alice, honest'), 'alice', 'bob', 'mallory')).catch(e => e);
        expect(error).toBeInstanceOf(AccessDenied);
        expect((await kit.peer('bob').relay.inbox()).map(e => [e.originalSender, e.payload.id])).toEqual([['alice', 'p-2']]);
    });

    it('receipts are taken only from the recipient or from a relay the sender uses, naming itself as carrier', async () => {
        await using kit = await startSwitchboard({ peers: [usingRelay('alice'), 'relay', 'bob', 'mallory'] });
        const alice = kit.peer('alice');
        const receipts: DeliveryReceipt[] = [];
        alice.relay.receipts$.subscribe(receipt => receipts.push(receipt));

        const forged = [
            kit.peer('mallory').to('alice').relay.receipt(new DeliveryReceipt('p-1', 'bob', new Date, 'relay')),
            kit.peer('mallory').to('alice').relay.receipt(new DeliveryReceipt('p-1', 'bob', new Date, 'mallory')),
            // Even the trusted relay may only report as itself.
            kit.peer('relay').to('alice').relay.receipt(new DeliveryReceipt('p-1', 'bob', new Date, 'other-relay')),
        ];
        for (const error of await Promise.all(forged.map(attempt => attempt.catch(e => e)))) {
            expect(error).toBeInstanceOf(AccessDenied);
            expect(error.reason).toBe('untrusted-receipt');
        }

        await kit.peer('relay').to('alice').relay.receipt(new DeliveryReceipt('p-1', 'bob', new Date, 'relay'));
        await kit.peer('bob').to('alice').relay.receipt(new DeliveryReceipt('p-2', 'bob', new Date, 'bob'));
        expect(receipts.map(r => [r.payloadId, r.via])).toEqual([['p-1', 'relay'], ['p-2', 'bob']]);
    });
});
