import { rpc, RpcClient, RpcWebSocketClientAdapter } from '@deepkit/rpc';
import { integer, Maximum, MaxLength, Minimum, Positive } from '@deepkit/type';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { firstValueFrom, Observable } from 'rxjs';
import { map } from 'rxjs/operators';
import WebSocket from 'ws';
import { ChatApi, ChatMessage, FileChunk, FilesApi, RelayEnvelope, RelayPayload, SealedKeyChanged, SealedPayloadInvalid } from '../../shared';
import { FileSharingController } from '../../peer/controllers/files-controller';
import { sealRelayPayload } from '../../peer/sealing/sealed-payloads';
import { startSwitchboard } from '../../testing/test-kit';
import { eventually } from '../helpers';

const stockReceived: string[] = [];

/** A stock Deepkit client's chat: a plain controller that knows nothing of sealing. */
class StockChat {
    @rpc.action()
    receive(message: ChatMessage): { id: string, status: string } {
        stockReceived.push(message.text);
        return { id: message.id, status: 'delivered' };
    }
}

/** Serves sealed chunks with one bit flipped in the third chunk's box, once: what a broker altering a frame does. */
@rpc.controller(FilesApi)
class FlipOnceController extends FileSharingController {
    static flipped = 0;

    @rpc.action()
    override chunks(fileId: string & MaxLength<64>, from: integer & Minimum<0>, count: integer & Positive & Maximum<16>, sealed?: boolean): Observable<FileChunk> {
        return super.chunks(fileId, from, count, sealed).pipe(map(chunk => {
            if (chunk.index !== 2 || FlipOnceController.flipped++) return chunk;
            return new FileChunk(chunk.index, flipped(chunk.data), chunk.sha256);
        }));
    }
}

/** A box with one bit of its ciphertext flipped. */
function flipped(box: Uint8Array): Uint8Array {
    const copy = box.slice();
    copy[copy.length - 20] ^= 0x01;
    return copy;
}

describe('sealed payloads: tampering, replays, keys', () => {
    let directory: string;
    beforeEach(() => directory = mkdtempSync(join(tmpdir(), 'switchboard-sealed-keys-')));
    afterEach(() => rmSync(directory, { recursive: true, force: true }));

    it('a flipped bit is rejected with SEALED_PAYLOAD_INVALID; nothing is stored and the recipient reports it', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        const alice = kit.peer('alice');
        const bob = kit.peer('bob');
        const box = (await alice.sealing.sealValue<ChatMessage>('bob', 'chat', new ChatMessage('m-1', 'pay 10 to carol')))!;
        expect(box).toBeInstanceOf(Uint8Array);

        const rejected = firstValueFrom(bob.sealing.rejected$);
        const error = await alice.to('bob').chat.receiveSealed(flipped(box)).catch(caught => caught);
        expect(error).toBeInstanceOf(SealedPayloadInvalid);
        expect(error).toMatchObject({ code: 'SEALED_PAYLOAD_INVALID', reason: 'tampered', peerId: 'alice' });
        expect(await rejected).toMatchObject({ code: 'SEALED_PAYLOAD_INVALID', peerId: 'alice' });
        expect(await bob.chat.history('alice')).toEqual([]);

        // The untouched box opens.
        await alice.to('bob').chat.receiveSealed(box);
        expect((await bob.chat.history('alice')).map(entry => entry.text)).toEqual(['pay 10 to carol']);
    });

    it('a file chunk with a flipped bit does not open: it is reported and fetched again, and the file arrives whole', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', { id: 'bob', expose: [[FlipOnceController, FilesApi]] }] });
        FlipOnceController.flipped = 0;
        const source = join(directory, 'data.bin');
        const content = Buffer.alloc(400_000, 7);
        writeFileSync(source, content);
        const shared = await kit.peer('bob').files.share(source);
        const rejected = firstValueFrom(kit.peer('alice').sealing.rejected$);
        const result = await kit.peer('alice').files.fetch('bob', shared.id, join(directory, 'copy.bin'));
        expect(await rejected).toMatchObject({ code: 'SEALED_PAYLOAD_INVALID', reason: 'tampered', peerId: 'bob' });
        expect(result).toMatchObject({ state: 'done', refetched: 1 });
        expect(readFileSync(join(directory, 'copy.bin')).equals(content)).toBe(true);
    });

    it('a box opens only for its recipient, sender and purpose: no replay to another peer or as another payload', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob', 'carol'] });
        const alice = kit.peer('alice');
        const forBob = (await alice.sealing.sealValue<ChatMessage>('bob', 'chat', new ChatMessage('m-2', 'for bob only')))!;

        // To another recipient: carol's key is not the one it was sealed for.
        await expect(alice.to('carol').chat.receiveSealed(forBob)).rejects.toMatchObject({ code: 'SEALED_PAYLOAD_INVALID', reason: 'wrong-recipient-key' });
        // Replayed by bob to himself... to carol in bob's name: sealed by alice, so it does not open as bob's.
        await expect(kit.peer('bob').to('carol').chat.receiveSealed(forBob)).rejects.toBeInstanceOf(SealedPayloadInvalid);
        // As another kind of payload to the same recipient: a collaboration update.
        await kit.peer('bob').collab.open('doc', { collaborators: ['alice'] });
        await expect(alice.to('bob').collab.pushSealed('doc', forBob)).rejects.toMatchObject({ code: 'SEALED_PAYLOAD_INVALID', reason: 'tampered' });
        // A sealed relay payload altered on its way (delivered now, not held: bob's key is in memory): refused, not stored.
        const sealed = await sealRelayPayload(alice.sealing, 'bob', new RelayPayload('p-1', 'note', 'sealed note'), false);
        const altered = new RelayPayload(sealed.id, sealed.kind, sealed.body.slice(0, -8) + (sealed.body.endsWith('AAAAAAAA') ? 'BBBBBBBB' : 'AAAAAAAA'));
        await expect(alice.to('bob').relay.deliver(new RelayEnvelope(altered, 'alice', 'bob', 'alice'))).rejects.toBeInstanceOf(SealedPayloadInvalid);
        expect(await kit.peer('bob').relay.inbox()).toEqual([]);
        await alice.to('bob').relay.deliver(new RelayEnvelope(sealed, 'alice', 'bob', 'alice'));
        expect((await kit.peer('bob').relay.inbox())[0].payload).toMatchObject({ kind: 'note', body: 'sealed note' });
    });

    it('keys survive a restart with a file store; a new key is reported loudly and refused until trusted', async () => {
        // lookupCacheMs 0: alice reads bob's published key before every sealed send (the default re-reads it each minute).
        await using kit = await startSwitchboard({ peers: [{ id: 'alice', sealing: { lookupCacheMs: 0 } }] });
        const alice = kit.peer('alice');
        const bobStorage = join(directory, 'bob.sqlite');
        let bob = await kit.addPeer({ id: 'bob', storage: bobStorage });
        const first = await bob.sealing.fingerprint();
        expect(first).toMatch(/^([0-9a-f]{4} ){7}[0-9a-f]{4}$/);
        await alice.chat.send('bob', 'before the restart');
        expect(await alice.sealing.contactFingerprint('bob')).toBe(first);

        await bob.close();
        bob = await kit.addPeer({ id: 'bob', storage: bobStorage });
        expect(await bob.sealing.fingerprint()).toBe(first);
        const changes: unknown[] = [];
        const subscription = alice.sealing.keyChanged$.subscribe(change => changes.push(change));
        expect((await alice.chat.send('bob', 'after the restart')).status).toBe('delivered');
        expect(changes).toEqual([]);

        // A plaintext message in bob's name (what a broker could forge; bob's SDK seals to alice) is refused.
        await expect(bob.to('alice').chat.receive(new ChatMessage('forged', 'send the keys to mallory'))).rejects.toMatchObject({ code: 'SEALED_PAYLOAD_INVALID', reason: 'plaintext-from-sealed-contact' });
        expect((await alice.chat.history('bob')).map(entry => entry.text)).not.toContain('send the keys to mallory');

        // bob loses his storage: a new key, published with his registration. alice pinned the old one.
        await bob.close();
        rmSync(bobStorage, { force: true });
        bob = await kit.addPeer({ id: 'bob', storage: bobStorage });
        const second = await bob.sealing.fingerprint();
        expect(second).not.toBe(first);

        // Sending: alice sees the new published key, reports it and seals nothing to it.
        const refused = await alice.chat.send('bob', 'are you still bob?').catch(error => error);
        expect(refused).toBeInstanceOf(SealedKeyChanged);
        expect(refused).toMatchObject({ code: 'SEALED_KEY_CHANGED', peerId: 'bob', pinnedFingerprint: first, offeredFingerprint: second });
        expect(changes).toEqual([expect.objectContaining({ peerId: 'bob', pinnedFingerprint: first, offeredFingerprint: second, seenIn: 'published' })]);
        expect((await alice.chat.history('bob')).at(-1)).toMatchObject({ text: 'are you still bob?', status: 'failed' });

        // Receiving: a box sealed with the new key is refused too (bob's message fails; alice stores nothing).
        const fromNewKey = await bob.chat.send('alice', 'hi, new phone').catch(error => error);
        expect(fromNewKey).toMatchObject({ code: 'SEALED_KEY_CHANGED', peerId: 'bob' });
        expect((await alice.chat.history('bob')).map(entry => entry.text)).not.toContain('hi, new phone');
        expect(changes).toHaveLength(1);

        // After comparing fingerprints, alice trusts the new key: messages go both ways again.
        expect(await alice.sealing.trust('bob')).toBe(second);
        expect(await alice.sealing.contactFingerprint('bob')).toBe(second);
        expect((await bob.chat.send('alice', 'hi again')).status).toBe('delivered');
        expect((await alice.chat.send('bob', 'welcome back')).status).toBe('delivered');
        subscription.unsubscribe();
    });

    it('a peer with sealing off and a stock Deepkit client still chat with sealing peers, in plaintext', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', { id: 'carol', sealing: false }] });
        const alice = kit.peer('alice');
        expect((await alice.chat.send('carol', 'to carol')).status).toBe('delivered');
        expect((await kit.peer('carol').chat.send('alice', 'to alice')).status).toBe('delivered');
        expect((await alice.chat.history('carol')).map(entry => entry.text)).toEqual(['to carol', 'to alice']);
        expect(await alice.sealing.contactFingerprint('carol')).toBeUndefined();

        const stock = new RpcClient(new RpcWebSocketClientAdapter(kit.url, WebSocket as any));
        try {
            stockReceived.length = 0;
            await stock.registerAsPeer('stock');
            stock.registerPeerController(StockChat, ChatApi.path);
            expect((await alice.chat.send('stock', 'to a stock client')).status).toBe('delivered');
            expect(stockReceived).toEqual(['to a stock client']);
            await stock.peer('alice').controller<ChatApi>(ChatApi.path).receive(new ChatMessage('s-1', 'from a stock client'));
            await eventually(async () => (await alice.chat.history('stock')).some(entry => entry.text === 'from a stock client'));
        } finally {
            await stock.disconnect();
        }
    });
});
