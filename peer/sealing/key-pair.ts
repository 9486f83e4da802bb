import type { PeerDatabase } from '../storage/peer-database';
import { fromBase64Url, source, toBase64Url } from './sealed-box';

const KEY_SETTING = 'sealing-key-pair';

/** This peer's X25519 key pair: the private key for agreement, the public key raw (32 bytes) as published. */
export interface SealingKeyPair {
    privateKey: CryptoKey;
    publicKey: Uint8Array;
}

/**
 * Loads this peer's key pair from its storage, or makes one with WebCrypto and stores it the first time: a peer with
 * a file (or browser) store keeps its key, and so the pins its contacts made, across restarts. With `:memory:`
 * storage every start is a new key, which contacts that pinned the old one report as a change.
 */
export async function loadKeyPair(database: PeerDatabase): Promise<SealingKeyPair> {
    const subtle = globalThis.crypto.subtle;
    const stored = await database.getSetting(KEY_SETTING);
    if (stored) {
        const jwk = JSON.parse(stored) as JsonWebKey;
        const privateKey = await subtle.importKey('jwk', jwk, { name: 'X25519' }, false, ['deriveBits']);
        const publicKey = fromBase64Url(jwk.x ?? '');
        if (publicKey?.byteLength === 32) return { privateKey, publicKey };
    }
    const pair = await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']) as CryptoKeyPair;
    const jwk = await subtle.exportKey('jwk', pair.privateKey);
    await database.setSetting(KEY_SETTING, JSON.stringify(jwk));
    // Not extractable from here on: the stored JWK is the only copy outside WebCrypto.
    const privateKey = await subtle.importKey('jwk', jwk, { name: 'X25519' }, false, ['deriveBits']);
    return { privateKey, publicKey: new Uint8Array(await subtle.exportKey('raw', pair.publicKey)) };
}

/**
 * A fingerprint two people can compare by reading it aloud: the first 16 bytes of the key's SHA-256, in eight groups
 * of four hex digits.
 */
export async function fingerprintOf(publicKey: Uint8Array): Promise<string> {
    const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', source(publicKey)));
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((digest[i] << 8) | digest[i + 1]).toString(16).padStart(4, '0'));
    return groups.join(' ');
}

/**
 * The published form of a public key: a capability announced with the registration (`x25519:<base64url>`), or
 * `x25519e:` for a key that lives only in memory (a new one at each start): contacts do not pin those.
 */
export const KEY_CAPABILITY_PREFIX = 'x25519:';
export const EPHEMERAL_KEY_CAPABILITY_PREFIX = 'x25519e:';

export function keyCapability(publicKey: Uint8Array, ephemeral: boolean): string {
    return (ephemeral ? EPHEMERAL_KEY_CAPABILITY_PREFIX : KEY_CAPABILITY_PREFIX) + toBase64Url(publicKey);
}

/** A published key. */
export interface PublishedKey {
    key: Uint8Array;
    ephemeral: boolean;
}

/** The key a peer published among its capabilities, if any. */
export function keyFromCapabilities(capabilities: readonly string[] | undefined): PublishedKey | undefined {
    for (const capability of capabilities ?? []) {
        if (typeof capability !== 'string') continue;
        const ephemeral = capability.startsWith(EPHEMERAL_KEY_CAPABILITY_PREFIX);
        if (!ephemeral && !capability.startsWith(KEY_CAPABILITY_PREFIX)) continue;
        const key = fromBase64Url(capability.slice(ephemeral ? EPHEMERAL_KEY_CAPABILITY_PREFIX.length : KEY_CAPABILITY_PREFIX.length));
        if (key?.byteLength === 32) return { key, ephemeral };
    }
    return undefined;
}
