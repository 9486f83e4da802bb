import * as nodeCrypto from 'crypto';
import { SealedPayloadInvalid } from '@switchboard/protocol';

/**
 * The sealed box format and its cryptography, all WebCrypto (Node 20 and browsers): X25519 between the sender's and
 * the recipient's long-term keys, HKDF-SHA-256 to an AES-256-GCM key per pair of keys, a random 96-bit nonce per box.
 *
 * A box: `version (1) | sender public key (32) | recipient public key (32) | nonce (12) | ciphertext and tag`.
 * The associated data is the header followed by the binding (purpose, sender ID, recipient ID, context): a box opens
 * only for the recipient key, sender and recipient IDs, purpose and context it was sealed for, so it cannot be
 * replayed to another peer, in the other direction, or as another kind of payload.
 *
 * Static-static agreement authenticates the sender (only the holder of either private key can make the AES key); it
 * gives no forward secrecy: whoever later steals a private key reads what was recorded before.
 */
export const SEALED_BOX_VERSION = 1;
/** Set in the version byte when the sender's key lives only in memory (see SealingOptions): it is not pinned. */
const EPHEMERAL_SENDER = 0x80;
export const PUBLIC_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const HEADER_BYTES = 1 + 2 * PUBLIC_KEY_BYTES + NONCE_BYTES;
const TAG_BYTES = 16;
/** Bytes a box adds to its plaintext. */
export const SEALED_BOX_OVERHEAD = HEADER_BYTES + TAG_BYTES;
const HKDF_INFO = new TextEncoder().encode('switchboard sealed box v1');
/**
 * In Node, boxes are sealed and opened with its own AES-256-GCM (the same cipher and bytes, from the same derived key):
 * WebCrypto's asynchronous jobs cost a file chunk about twice as much (64 MiB: 145 ms to seal and open instead of 75).
 * Absent in browsers, whose bundle maps `crypto` to nothing: there WebCrypto does it.
 */
const nodeAesGcm = typeof nodeCrypto.createCipheriv === 'function' && typeof nodeCrypto.KeyObject?.from === 'function' ? nodeCrypto : undefined;
const nodeKeys = new WeakMap<CryptoKey, nodeCrypto.KeyObject>();

/** What a box is bound to, besides the two keys. */
export interface BoxBinding {
    /** `chat`, `relay`, `file-chunk`, `collab-push`, `collab-sync`, `collab-sync-answer`. */
    purpose: string;
    sender: string;
    recipient: string;
    /** What the payload belongs to: a file and chunk index, a document, a relay payload ID. */
    context?: string;
}

/** A box's header, read before anything is decrypted. */
export interface BoxHeader {
    senderKey: Uint8Array;
    recipientKey: Uint8Array;
    /** The sender's key is new at each of its starts (memory storage): not to be pinned. */
    ephemeralSender: boolean;
}

/** The AES keys of the pairs of keys this peer has sealed or opened with, derived once each. */
export class PairKeyCache {
    protected keys = new Map<string, Promise<CryptoKey>>();

    constructor(protected privateKey: CryptoKey, protected ourPublicKey: Uint8Array, protected limit = 10_000) {
    }

    get(theirPublicKey: Uint8Array): Promise<CryptoKey> {
        const id = hex(theirPublicKey);
        let key = this.keys.get(id);
        if (!key) {
            if (this.keys.size >= this.limit) this.keys.delete(this.keys.keys().next().value!);
            key = derivePairKey(this.privateKey, this.ourPublicKey, theirPublicKey);
            // A key that could not be derived (a low-order point) is not kept: the next box tries again and fails again.
            key.catch(() => this.keys.delete(id));
            this.keys.set(id, key);
        }
        return key;
    }
}

async function derivePairKey(privateKey: CryptoKey, ourPublicKey: Uint8Array, theirPublicKey: Uint8Array): Promise<CryptoKey> {
    const subtle = globalThis.crypto.subtle;
    const theirs = await subtle.importKey('raw', source(theirPublicKey), { name: 'X25519' }, false, []);
    const shared = await subtle.deriveBits({ name: 'X25519', public: theirs } as unknown as AlgorithmIdentifier, privateKey, 256);
    const material = await subtle.importKey('raw', shared, 'HKDF', false, ['deriveKey']);
    // Both sides derive the same key: the salt holds both public keys in a fixed order.
    const salt = compare(ourPublicKey, theirPublicKey) < 0 ? concat(ourPublicKey, theirPublicKey) : concat(theirPublicKey, ourPublicKey);
    return subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: source(salt), info: source(HKDF_INFO) }, material, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

export async function sealBox(key: CryptoKey, senderKey: Uint8Array, recipientKey: Uint8Array, binding: BoxBinding, plaintext: Uint8Array, ephemeralSender = false): Promise<Uint8Array> {
    const header = new Uint8Array(HEADER_BYTES);
    header[0] = SEALED_BOX_VERSION | (ephemeralSender ? EPHEMERAL_SENDER : 0);
    header.set(senderKey, 1);
    header.set(recipientKey, 1 + PUBLIC_KEY_BYTES);
    header.set(globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES)), 1 + 2 * PUBLIC_KEY_BYTES);
    const nonce = header.subarray(1 + 2 * PUBLIC_KEY_BYTES);
    if (nodeAesGcm) {
        const cipher = nodeAesGcm.createCipheriv('aes-256-gcm', nodeKey(nodeAesGcm, key), nonce, { authTagLength: TAG_BYTES });
        cipher.setAAD(associatedData(header, binding));
        const box = new Uint8Array(HEADER_BYTES + plaintext.byteLength + TAG_BYTES);
        box.set(header);
        box.set(cipher.update(plaintext), HEADER_BYTES);
        cipher.final();
        box.set(cipher.getAuthTag(), HEADER_BYTES + plaintext.byteLength);
        return box;
    }
    const sealed = await globalThis.crypto.subtle.encrypt({ name: 'AES-GCM', iv: source(nonce), additionalData: source(associatedData(header, binding)) }, key, source(plaintext));
    return concat(header, new Uint8Array(sealed));
}

/** The header of `box`; SealedPayloadInvalid (`malformed`) for anything that is not a box of this version. */
export function readHeader(box: Uint8Array, binding: BoxBinding): BoxHeader {
    if (!(box instanceof Uint8Array) || box.byteLength < HEADER_BYTES + TAG_BYTES || (box[0] & ~EPHEMERAL_SENDER) !== SEALED_BOX_VERSION) {
        throw invalid(`The sealed ${binding.purpose} payload from "${binding.sender}" is not a version ${SEALED_BOX_VERSION} sealed box; it was dropped. Update the sender's SDK.`, 'malformed', binding.sender);
    }
    return { senderKey: box.slice(1, 1 + PUBLIC_KEY_BYTES), recipientKey: box.slice(1 + PUBLIC_KEY_BYTES, 1 + 2 * PUBLIC_KEY_BYTES), ephemeralSender: (box[0] & EPHEMERAL_SENDER) !== 0 };
}

/** The plaintext; SealedPayloadInvalid (`tampered`) when the box was altered or is bound to something else. */
export async function openBox(key: CryptoKey, box: Uint8Array, binding: BoxBinding): Promise<Uint8Array> {
    const header = box.subarray(0, HEADER_BYTES);
    const nonce = header.subarray(1 + 2 * PUBLIC_KEY_BYTES);
    try {
        if (nodeAesGcm) {
            const decipher = nodeAesGcm.createDecipheriv('aes-256-gcm', nodeKey(nodeAesGcm, key), nonce, { authTagLength: TAG_BYTES });
            decipher.setAAD(associatedData(header, binding));
            decipher.setAuthTag(box.subarray(box.byteLength - TAG_BYTES));
            const opened = decipher.update(box.subarray(HEADER_BYTES, box.byteLength - TAG_BYTES));
            // final() checks the tag: nothing is returned from a box that does not authenticate.
            decipher.final();
            return opened;
        }
        const plaintext = await globalThis.crypto.subtle.decrypt({ name: 'AES-GCM', iv: source(nonce), additionalData: source(associatedData(header, binding)) }, key, source(box.subarray(HEADER_BYTES)));
        return new Uint8Array(plaintext);
    } catch {
        throw invalid(`A sealed ${binding.purpose} payload from "${binding.sender}" failed authentication: it was altered on its way, or sealed for another peer or purpose. It was dropped; the sender sees this error.`, 'tampered', binding.sender);
    }
}

/** The pair's AES key as Node's cipher takes it (the WebCrypto key stays non-extractable). */
function nodeKey(node: typeof nodeCrypto, key: CryptoKey): nodeCrypto.KeyObject {
    let converted = nodeKeys.get(key);
    if (!converted) nodeKeys.set(key, converted = node.KeyObject.from(key));
    return converted;
}

function associatedData(header: Uint8Array, binding: BoxBinding): Uint8Array {
    const bound = JSON.stringify([binding.purpose, binding.sender, binding.recipient, binding.context ?? '']);
    return concat(header, new TextEncoder().encode(bound));
}

export function invalid(message: string, reason: string, peerId: string): SealedPayloadInvalid {
    const error = new SealedPayloadInvalid(message, reason, peerId);
    error.stack = '';
    return error;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
    const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
    let offset = 0;
    for (const part of parts) {
        out.set(part, offset);
        offset += part.byteLength;
    }
    return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
    return a.byteLength === b.byteLength && compare(a, b) === 0;
}

function compare(a: Uint8Array, b: Uint8Array): number {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
}

export function hex(bytes: Uint8Array): string {
    let out = '';
    for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
    return out;
}

export function toBase64Url(bytes: Uint8Array): string {
    let binary = '';
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64Url(text: string): Uint8Array | undefined {
    if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
    let binary: string;
    try {
        binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    } catch {
        return undefined;
    }
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
}

/** WebCrypto's parameter type: our byte arrays are never backed by a SharedArrayBuffer. */
export function source(bytes: Uint8Array): BufferSource {
    return bytes as Uint8Array<ArrayBuffer>;
}
