/**
 * What binds a direct link to the two identities the broker verified. WebRTC's DTLS handshake only succeeds with
 * the certificates whose fingerprints are in the SDPs; the SDPs and both nonces travelled as peer calls between
 * the verified identities. So the first message on the data channel is an HMAC (WebCrypto), keyed by both nonces,
 * over the link ID, both peer IDs, both fingerprints and the sender's role: only the two peers of this signalling
 * know the key, a changed SDP changes the transcript, and one side's proof cannot be reflected as the other's.
 */
export type LinkRole = 'offerer' | 'answerer';

export interface LinkTranscript {
    linkId: string;
    offerer: string;
    answerer: string;
    /** `sha-256 AB:CD:…` from each SDP. */
    offerFingerprint: string;
    answerFingerprint: string;
    offerNonce: string;
    answerNonce: string;
}

const PROOF_LABEL = 'switchboard-link/1';
const FINGERPRINT_LINE = /^a=fingerprint:(\S+) ([0-9A-Fa-f:]+)\s*$/gm;

/**
 * The DTLS fingerprint an SDP declares, normalised (`sha-256 AB:CD:…`); undefined when it has none, or several that
 * differ (a session-level and a media-level line may both be there, but must agree).
 */
export function fingerprintOf(sdp: string): string | undefined {
    const found = new Set<string>();
    for (const match of sdp.matchAll(FINGERPRINT_LINE)) found.add(`${match[1].toLowerCase()} ${match[2].toUpperCase()}`);
    return found.size === 1 ? [...found][0] : undefined;
}

/** A fresh random hex string of `bytes` bytes (link IDs, nonces). */
export function randomHex(bytes: number): string {
    const values = globalThis.crypto.getRandomValues(new Uint8Array(bytes));
    return Array.from(values, byte => byte.toString(16).padStart(2, '0')).join('');
}

function transcriptText(transcript: LinkTranscript, role: LinkRole): Uint8Array<ArrayBuffer> {
    const { linkId, offerer, answerer, offerFingerprint, answerFingerprint } = transcript;
    return new TextEncoder().encode([PROOF_LABEL, role, linkId, offerer, answerer, offerFingerprint, answerFingerprint].join('\n'));
}

function hexBytes(hex: string): Uint8Array<ArrayBuffer> {
    const bytes = new Uint8Array(hex.length / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    return bytes;
}

async function proofKey(transcript: LinkTranscript): Promise<CryptoKey> {
    const secret = hexBytes(transcript.offerNonce + transcript.answerNonce);
    return globalThis.crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
}

/** The proof `role` sends as its first message on the link. */
export async function signLink(transcript: LinkTranscript, role: LinkRole): Promise<Uint8Array> {
    return new Uint8Array(await globalThis.crypto.subtle.sign('HMAC', await proofKey(transcript), transcriptText(transcript, role)));
}

/** Whether `proof` is the other side's (`role`) proof of this transcript; compared by WebCrypto, in constant time. */
export async function verifyLink(transcript: LinkTranscript, role: LinkRole, proof: Uint8Array): Promise<boolean> {
    // A copy: the proof may be a view into a larger buffer, which WebCrypto would read whole.
    return globalThis.crypto.subtle.verify('HMAC', await proofKey(transcript), new Uint8Array(proof), transcriptText(transcript, role));
}
