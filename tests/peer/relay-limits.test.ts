import { QuotaExceeded, RelayEnvelope, RelayPayload } from '../../shared';
import { startSwitchboard } from '../../testing/test-kit';

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

    it("a recipient's inbox keeps a bounded number and size of payloads per sender: the sender's oldest go first", async () => {
        await using kit = await startSwitchboard({ peers: [{ id: 'bob', relay: { inboxPerSender: 3, inboxBytesPerSender: 1000 } }, 'mallory', 'alice'] });
        await kit.peer('alice').to('bob').relay.deliver(new RelayEnvelope(new RelayPayload('a-1', 'note', 'from alice'), 'alice', 'bob', 'alice'));
        const fromMallory = kit.peer('mallory').to('bob').relay;
        for (let i = 1; i <= 5; i++) await fromMallory.deliver(new RelayEnvelope(new RelayPayload(`m-${i}`, 'note', `spam ${i}`), 'mallory', 'bob', 'mallory'));
        const ids = async () => (await kit.peer('bob').relay.inbox()).map(envelope => envelope.payload.id);
        expect(await ids()).toEqual(['a-1', 'm-3', 'm-4', 'm-5']);

        // In bytes too: one large payload pushes out as many of the sender's older ones as it takes.
        await fromMallory.deliver(new RelayEnvelope(new RelayPayload('m-big', 'note', 'x'.repeat(990)), 'mallory', 'bob', 'mallory'));
        expect(await ids()).toEqual(['a-1', 'm-5', 'm-big']);
    });

    it('payloads whose TTL ended for a recipient that never came back no longer count against their sender', async () => {
        // The TTL runs on the relay's clock, which the test moves instead of waiting.
        let now = Date.now();
        await using kit = await startSwitchboard({ peers: [{ id: 'relay', clock: () => now, relay: { quotaPerSender: 1 } }, 'alice'] });
        const relay = kit.peer('alice').to('relay').relay;
        await relay.store('ghost', new RelayPayload('p-1', 'note', 'soon stale'), 60);
        await expect(relay.store('ghost', new RelayPayload('p-2', 'note', 'too many'), 60)).rejects.toBeInstanceOf(QuotaExceeded);
        now += 61_000;
        await expect(relay.store('ghost', new RelayPayload('p-2', 'note', 'room again'), 60)).resolves.toMatchObject({ payloadId: 'p-2' });
        expect(await kit.peer('relay').relay.heldFor('ghost')).toBe(1);
    });

    it('pull answers at most 8 MiB of payloads a call; the rest stays held for the next pull', async () => {
        await using kit = await startSwitchboard({ peers: ['relay', 'alice'] });
        const relay = kit.peer('alice').to('relay').relay;
        for (let i = 0; i < 10; i++) await relay.store('ghost', new RelayPayload(`p-${i}`, 'note', `${i}`.padEnd(1_000_000, '.')));
        const ghost = await kit.addPeer({ id: 'ghost', reconnect: false });
        const pulled: string[] = [];
        for (let answer = await ghost.to('relay').relay.pull(); answer.length; answer = await ghost.to('relay').relay.pull()) {
            expect(answer.reduce((sum, envelope) => sum + envelope.payload.body.length, 0)).toBeLessThanOrEqual(8 * 1024 * 1024);
            pulled.push(...answer.map(envelope => envelope.payload.id));
        }
        // Pulled or pushed (the relay pushes to a recipient it sees come online), each once.
        const pushed = (await ghost.relay.inbox()).map(envelope => envelope.payload.id);
        expect(new Set([...pulled, ...pushed]).size).toBe(10);
        expect(await kit.peer('relay').relay.heldFor('ghost')).toBe(0);
    });
});
