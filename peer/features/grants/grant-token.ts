import { PeerDatabase } from '../../storage/peer-database';

/** What a token says; signed as a whole. */
export interface GrantClaims {
    id: string;
    grantor: string;
    holder: string;
    resource: string;
    rights: string[];
    /** Milliseconds since the epoch. */
    expiresAt: number;
}

const KEY_SETTING = 'grants-hmac-key';
const PREFIX = 'sbg1';
const HMAC = { name: 'HMAC', hash: 'SHA-256' } as const;

/**
 * Signs and checks grant tokens with an HMAC-SHA-256 key made by WebCrypto and kept in the peer's storage, so tokens
 * stay valid across a restart (and only this peer can issue or check them). Token: `sbg1.<claims>.<signature>`,
 * both parts base64url; the claims are JSON.
 */
export class GrantSigner {
    protected key?: Promise<CryptoKey>;

    constructor(protected database: PeerDatabase) {
    }

    async sign(claims: GrantClaims): Promise<string> {
        const body = toBase64Url(new TextEncoder().encode(JSON.stringify(claims)));
        const signature = await globalThis.crypto.subtle.sign(HMAC, await this.loadKey(), new TextEncoder().encode(`${PREFIX}.${body}`));
        return `${PREFIX}.${body}.${toBase64Url(new Uint8Array(signature))}`;
    }

    /** The claims of a token this peer signed; undefined for anything else (forged, altered, malformed). */
    async verify(token: string): Promise<GrantClaims | undefined> {
        const [prefix, body, signature, ...rest] = token.split('.');
        if (prefix !== PREFIX || !body || !signature || rest.length) return undefined;
        const signatureBytes = fromBase64Url(signature);
        if (!signatureBytes) return undefined;
        const valid = await globalThis.crypto.subtle.verify(HMAC, await this.loadKey(), signatureBytes as Uint8Array<ArrayBuffer>, new TextEncoder().encode(`${PREFIX}.${body}`));
        if (!valid) return undefined;
        const json = fromBase64Url(body);
        return json ? JSON.parse(new TextDecoder().decode(json)) as GrantClaims : undefined;
    }

    protected loadKey(): Promise<CryptoKey> {
        return this.key ??= this.readOrCreateKey();
    }

    protected async readOrCreateKey(): Promise<CryptoKey> {
        const stored = await this.database.getSetting(KEY_SETTING);
        if (stored) return globalThis.crypto.subtle.importKey('raw', fromBase64Url(stored)! as Uint8Array<ArrayBuffer>, HMAC, false, ['sign', 'verify']);
        const key = await globalThis.crypto.subtle.generateKey({ ...HMAC, length: 256 }, true, ['sign', 'verify']) as CryptoKey;
        const raw = new Uint8Array(await globalThis.crypto.subtle.exportKey('raw', key));
        await this.database.setSetting(KEY_SETTING, toBase64Url(raw));
        return key;
    }
}

function toBase64Url(bytes: Uint8Array): string {
    let binary = '';
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array | undefined {
    if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
    try {
        const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
        return Uint8Array.from(binary, char => char.charCodeAt(0));
    } catch {
        return undefined;
    }
}
