import { QuotaExceeded, RelayPayload } from '../../shared';
import { startSwitchboard } from '../../peer/testing';

describe('what a stranger can make a relay hold', () => {
    it('the bytes one sender has held are bounded as well as the payloads; a delivery makes room again', async () => {
        await using kit = await startSwitchboard({ peers: [{ id: 'relay', relay: { quotaPerSender: 100, bytesPerSender: 1000 } }, 'mallory', 'alice'] });
        const relay = kit.peer('mallory').to('relay').relay;
        await relay.store('ghost', new RelayPayload('p-1', 'note', 'x'.repeat(600)));
        const error = await relay.store('ghost', new RelayPayload('p-2', 'note', 'x'.repeat(600))).catch(caught => caught);
        expect(error).toBeInstanceOf(QuotaExceeded);
        expect(error.limit).toBe(1000);
        // A retry of what is held is still acknowledged; another sender has its own quota.
        await expect(relay.store('ghost', new RelayPayload('p-1', 'note', 'x'.repeat(600)))).resolves.toMatchObject({ payloadId: 'p-1' });
        await kit.peer('alice').to('relay').relay.store('ghost', new RelayPayload('p-1', 'note', 'x'.repeat(600)));

        // Once the recipient took the payloads, the sender may store again.
        const ghost = await kit.addPeer('ghost');
        await ghost.to('relay').relay.pull();
        expect(await kit.peer('relay').relay.heldFor('ghost')).toBe(0);
        await relay.store('ghost', new RelayPayload('p-2', 'note', 'x'.repeat(600)));
    });
});
