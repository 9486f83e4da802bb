import { RemoteController } from '@deepkit/rpc';
import { concatMap, Observable } from 'rxjs';
import { ChatApi, ChatMessage, CollabApi, CollabSync, DeliveryStatus, FileChunk, RelayPayload } from '@switchboard/protocol';
import { fromBase64Url, invalid, toBase64Url } from './sealed-box';
import type { Sealing } from './sealing';

/**
 * The services' side of sealing: one function per kind of payload, so each service calls sealing in one line and
 * a stock Deepkit client, or a peer with no key, still gets plaintext.
 */

/** Relay payloads sealed end to end carry this kind; the real kind travels inside the box. */
export const SEALED_RELAY_KIND = 'switchboard/sealed';

/** Delivers a chat message: sealed (`receiveSealed`) when the recipient has a key, else in plaintext (`receive`). */
export async function sendChatMessage(remote: RemoteController<ChatApi>, sealing: Sealing | undefined, recipient: string, message: ChatMessage): Promise<{ id: string, status: DeliveryStatus }> {
    const send = async () => {
        const box = await sealing?.sealValue<ChatMessage>(recipient, 'chat', message);
        return box ? remote.receiveSealed(box) : remote.receive(message);
    };
    return sealing ? sealing.withFreshKey(recipient, send) : send();
}

/**
 * `payload` sealed for its final `recipient` (not the relay, which keeps only ciphertext); as is if it has no key.
 * SealedPayloadInvalid (`recipient-key-ephemeral`) for a recipient whose key lives in memory (see SealOptions.held).
 */
export async function sealRelayPayload(sealing: Sealing | undefined, recipient: string, payload: RelayPayload, held = true): Promise<RelayPayload> {
    const box = await sealing?.sealValue<{ kind: string, body: string }>(recipient, 'relay', { kind: payload.kind, body: payload.body }, payload.id, { held });
    if (!box) return payload;
    const body = toBase64Url(box);
    if (body.length > 1_000_000) {
        throw new RangeError(`Relay payload ${payload.id} is too large to seal: a sealed body is at most about 750,000 bytes of UTF-8 (the relay takes 1,000,000 characters, and sealing encodes in base64). Split it.`);
    }
    return new RelayPayload(payload.id, SEALED_RELAY_KIND, body);
}

/** A relay payload as its original sender wrote it: opened if sealed (SealedPayloadInvalid if it does not open). */
export async function openRelayPayload(sealing: Sealing | undefined, originalSender: string, payload: RelayPayload): Promise<RelayPayload> {
    if (payload.kind !== SEALED_RELAY_KIND) return payload;
    const box = fromBase64Url(payload.body);
    if (!sealing || !box) throw invalid(`The sealed relay payload ${payload.id} from "${originalSender}" is not valid base64url; it was dropped.`, 'malformed', originalSender);
    const inner = await sealing.openValue<{ kind: string, body: string }>(originalSender, 'relay', box, payload.id);
    return new RelayPayload(payload.id, inner.kind, inner.body);
}

/** Binds a file chunk to its file and position: a chunk cannot be swapped with another. */
export function chunkContext(fileId: string, index: number): string {
    return `${fileId}#${index}`;
}

/** Each chunk's data sealed for `downloader` (who asked for sealed chunks, so it has a key), in order. */
export function sealChunks(chunks: Observable<FileChunk>, sealing: Sealing, downloader: string, fileId: string): Observable<FileChunk> {
    return chunks.pipe(concatMap(async chunk => {
        const box = await sealing.seal(downloader, 'file-chunk', chunk.data, chunkContext(fileId, chunk.index));
        if (!box) throw invalid(`"${downloader}" asked for sealed chunks, but this peer has no key for it${sealing.enabled ? '' : ' (its sealing is off)'}; download without sealing.`, 'no-key', downloader);
        // No hash of its own: the box's authentication tag covers every byte, and binds it to the file and position.
        return new FileChunk(chunk.index, box, '');
    }));
}

/** A Yjs state exchange in one box: `update` then `stateVector`, the first prefixed with its length. */
export function packSync(update: Uint8Array, stateVector: Uint8Array): Uint8Array {
    const packed = new Uint8Array(4 + update.byteLength + stateVector.byteLength);
    new DataView(packed.buffer).setUint32(0, update.byteLength);
    packed.set(update, 4);
    packed.set(stateVector, 4 + update.byteLength);
    return packed;
}

export function unpackSync(packed: Uint8Array, sender: string): { update: Uint8Array, stateVector: Uint8Array } {
    const length = packed.byteLength >= 4 ? new DataView(packed.buffer, packed.byteOffset).getUint32(0) : -1;
    if (length < 0 || 4 + length > packed.byteLength) throw invalid(`A sealed collaboration sync from "${sender}" opened but is not a sync; it was dropped.`, 'malformed', sender);
    return { update: packed.subarray(4, 4 + length), stateVector: packed.subarray(4 + length) };
}

/** Pushes a Yjs update to a collaborator: sealed (`pushSealed`) when it has a key, else in plaintext. */
export async function pushUpdate(remote: RemoteController<CollabApi>, sealing: Sealing | undefined, peerId: string, docId: string, update: Uint8Array): Promise<void> {
    const push = async () => {
        const box = await sealing?.seal(peerId, 'collab-push', update, docId);
        await (box ? remote.pushSealed(docId, box) : remote.push(docId, update));
    };
    await (sealing ? sealing.withFreshKey(peerId, push) : push());
}

/** A state-vector exchange with a collaborator: sealed both ways (`syncSealed`) when it has a key, else in plaintext. */
export async function syncState(remote: RemoteController<CollabApi>, sealing: Sealing | undefined, peerId: string, docId: string, stateVector: Uint8Array): Promise<CollabSync> {
    const sync = async () => {
        const box = await sealing?.seal(peerId, 'collab-sync', stateVector, docId);
        if (!box) return remote.sync(docId, stateVector);
        const answer = await remote.syncSealed(docId, box);
        return unpackSync(await sealing!.open(peerId, 'collab-sync-answer', answer, docId), peerId);
    };
    return sealing ? sealing.withFreshKey(peerId, sync) : sync();
}

/** The answering side of `syncState`: the caller's state vector opened, our answer sealed for it. */
export async function answerSealedSync(sealing: Sealing, caller: string, docId: string, box: Uint8Array, answer: (stateVector: Uint8Array) => Promise<CollabSync>): Promise<Uint8Array> {
    const sync = await answer(await sealing.open(caller, 'collab-sync', box, docId));
    const sealed = await sealing.seal(caller, 'collab-sync-answer', packSync(sync.update, sync.stateVector), docId);
    if (!sealed) throw invalid(`"${caller}" sent a sealed sync, but this peer has no key for it to answer with; sync without sealing.`, 'no-key', caller);
    return sealed;
}
