import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { firstValueFrom } from 'rxjs';
import { filter, take, toArray } from 'rxjs/operators';
import { CHAT_RELAY_KIND, ChatEntry, RelayEnvelope, RelayPayload } from '../../shared';
import { startSwitchboard } from '../../testing/test-kit';
import { eventually, wentOffline } from '../helpers';

/**
 * A peer that uses "carol" as its relay: it trusts her to vouch for senders and to report deliveries. It keeps its
 * storage in a file of this test's: a relay holds a chat message only sealed for a key the recipient still has after
 * a restart (a key in memory is new at each start, see peer.sealing).
 */
let storage: string;
beforeEach(() => storage = mkdtempSync(join(tmpdir(), 'switchboard-paths-keys-')));
afterEach(() => rmSync(storage, { recursive: true, force: true }));
const usingCarol = (id: string) => ({ id, relay: { trustedRelays: ['carol'] }, storage: join(storage, `${id}.sqlite`) });

function statusOf(entries: ChatEntry[], id: string): ChatEntry | undefined {
    return entries.find(entry => entry.id === id);
}

describe('the path of each chat message', () => {
    it('records the path with the message, in the history and in updates$, and reports each change of a conversation\'s path', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        const alice = kit.peer('alice');
        const changes = firstValueFrom(alice.chat.paths$.pipe(take(3), toArray()));

        const first = await alice.chat.send('bob', 'over the broker');
        expect(first).toMatchObject({ status: 'delivered', path: 'broker' });
        expect((await kit.peer('bob').chat.history('alice'))[0]).toMatchObject({ id: first.id, direction: 'in', path: 'broker' });

        const bobGone = wentOffline(alice, 'bob');
        await kit.peer('bob').close();
        await bobGone;
        const waiting = await alice.chat.send('bob', 'kept in my outbox');
        expect(waiting).toMatchObject({ status: 'queued', path: 'outbox' });

        const delivered = firstValueFrom(alice.chat.updates$.pipe(filter(entry => entry.id === waiting.id && entry.status === 'delivered')));
        await kit.addPeer('bob');
        expect(await delivered).toMatchObject({ path: 'broker' });
        expect(statusOf(await alice.chat.history('bob'), waiting.id)).toMatchObject({ status: 'delivered', path: 'broker' });
        expect(await changes).toEqual([{ peerId: 'bob', path: 'broker' }, { peerId: 'bob', path: 'outbox' }, { peerId: 'bob', path: 'broker' }]);
    });

    it('a chat to an offline recipient goes through an online relay both trust, and is delivered exactly once', async () => {
        await using kit = await startSwitchboard({ peers: ['carol', usingCarol('alice'), usingCarol('bob')] });
        const alice = kit.peer('alice');
        const carol = kit.peer('carol');
        const bobGone = wentOffline(alice, 'bob');
        await kit.peer('bob').close();
        await bobGone;

        // bob announced carol when it registered; the broker keeps it while bob is offline.
        const sent = await alice.chat.send('bob', 'held by carol');
        expect(sent).toMatchObject({ status: 'queued', path: 'relay' });
        expect(await carol.relay.heldFor('bob')).toBe(1);
        expect(await alice.outbox.pending('bob')).toEqual([]);
        const second = await alice.chat.send('bob', 'and this one after it');
        expect(second).toMatchObject({ status: 'queued', path: 'relay' });

        const confirmed = firstValueFrom(alice.chat.updates$.pipe(filter(entry => entry.status === 'delivered'), take(2), toArray()));
        const received: ChatEntry[] = [];
        const bob = await kit.addPeer(usingCarol('bob'), peer => peer.chat.updates$.subscribe(entry => received.push(entry)));
        expect((await confirmed).map(entry => [entry.id, entry.path])).toEqual([[sent.id, 'relay'], [second.id, 'relay']]);

        // Once each, in order, from alice (carol vouched for her), recorded as relayed.
        const history = await bob.chat.history('alice');
        expect(history.map(entry => [entry.text, entry.direction, entry.path])).toEqual([['held by carol', 'in', 'relay'], ['and this one after it', 'in', 'relay']]);
        expect(received.map(entry => entry.id)).toEqual([sent.id, second.id]);
        expect(await carol.relay.heldFor('bob')).toBe(0);
        // Not in bob's relay inbox: the chat took it.
        expect(await bob.relay.inbox()).toEqual([]);

        // bob is back: the conversation leaves the relay.
        expect(await alice.chat.send('bob', 'straight to you')).toMatchObject({ status: 'delivered', path: 'broker' });
    });

    it('a relayed chat message is checked like one that came as a call: a malformed one is refused to the relay, and nothing is stored', async () => {
        await using kit = await startSwitchboard({ peers: ['carol', usingCarol('bob')] });
        const toBob = kit.peer('carol').to('bob').relay;
        const envelope = (body: string) => new RelayEnvelope(new RelayPayload('m-1', CHAT_RELAY_KIND, body), 'alice', 'bob', 'carol');
        await expect(toBob.deliver(envelope('not json'))).rejects.toMatchObject({ name: 'ValidationError', message: expect.stringMatching(/not JSON/) });
        await expect(toBob.deliver(envelope(JSON.stringify({ id: 'm-1', text: '', sentAt: new Date() })))).rejects.toMatchObject({ name: 'ValidationError' });
        await expect(toBob.deliver(envelope(JSON.stringify({ id: 'other', text: 'hi', sentAt: new Date() })))).rejects.toMatchObject({ name: 'ValidationError' });
        expect(await kit.peer('bob').chat.history('alice')).toEqual([]);
        expect(await kit.peer('bob').relay.inbox()).toEqual([]);

        await toBob.deliver(envelope(JSON.stringify({ id: 'm-1', text: 'hi', sentAt: new Date() })));
        expect((await kit.peer('bob').chat.history('alice')).map(entry => [entry.text, entry.path])).toEqual([['hi', 'relay']]);
    });

    it('a relay\'s receipt marks the message delivered even when it reaches the sender after a restart', async () => {
        const directory = mkdtempSync(join(tmpdir(), 'switchboard-paths-'));
        try {
            await using kit = await startSwitchboard({ peers: ['carol', usingCarol('bob')] });
            const alice = { ...usingCarol('alice'), storage: join(directory, 'alice.sqlite') };
            const first = await kit.addPeer(alice);
            const bobGone = wentOffline(first, 'bob');
            await kit.peer('bob').close();
            await bobGone;
            const sent = await first.chat.send('bob', 'before my restart');
            expect(sent).toMatchObject({ status: 'queued', path: 'relay' });
            await first.close();

            // bob gets it while alice is away; carol keeps the receipt until alice is back.
            const bob = await kit.addPeer(usingCarol('bob'));
            await eventually(async () => (await bob.chat.history('alice')).length === 1);
            let confirmed!: Promise<ChatEntry>;
            await kit.addPeer(alice, peer => {
                confirmed = firstValueFrom(peer.chat.updates$.pipe(filter(entry => entry.id === sent.id && entry.status === 'delivered')));
            });
            expect(await confirmed).toMatchObject({ text: 'before my restart', path: 'relay' });
        } finally {
            rmSync(directory, { recursive: true, force: true });
        }
    });

    it('takes no relay the sender does not trust (it could not believe its receipts): the message waits in the outbox', async () => {
        await using kit = await startSwitchboard({ peers: ['carol', 'alice', usingCarol('bob')] });
        const alice = kit.peer('alice');
        const bobGone = wentOffline(alice, 'bob');
        await kit.peer('bob').close();
        await bobGone;
        expect(await alice.chat.send('bob', 'wait for bob')).toMatchObject({ status: 'queued', path: 'outbox' });
        expect(await kit.peer('carol').relay.heldFor('bob')).toBe(0);
    });

    it('a relay that is offline is skipped: the message waits in the outbox and goes out when the recipient is back', async () => {
        await using kit = await startSwitchboard({ peers: ['carol', usingCarol('alice'), usingCarol('bob')] });
        const alice = kit.peer('alice');
        const gone = Promise.all([wentOffline(alice, 'bob'), wentOffline(alice, 'carol')]);
        await kit.peer('bob').close();
        await kit.peer('carol').close();
        await gone;
        const sent = await alice.chat.send('bob', 'no relay online');
        expect(sent).toMatchObject({ status: 'queued', path: 'outbox' });
        const delivered = firstValueFrom(alice.chat.updates$.pipe(filter(entry => entry.id === sent.id && entry.status === 'delivered')));
        const bob = await kit.addPeer(usingCarol('bob'));
        expect(await delivered).toMatchObject({ path: 'broker' });
        await eventually(async () => (await bob.chat.history('alice')).length === 1);
    });
});
