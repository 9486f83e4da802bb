import { SealedPayloadInvalid } from '../../shared';
import { BoxBinding, openBox, PairKeyCache, SEALED_BOX_OVERHEAD, sealBox } from '../../peer/sealing/sealed-box';

/**
 * Node peers seal and open with Node's AES-256-GCM, browser peers with WebCrypto: both must read each other's boxes.
 * WebCrypto here stands for the browser, with the format as sealed-box.ts documents it.
 */
const subtle = globalThis.crypto.subtle;
const HEADER_BYTES = 1 + 32 + 32 + 12;

async function pair() {
    const generate = async () => {
        const keys = await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']) as CryptoKeyPair;
        return { privateKey: keys.privateKey, publicKey: new Uint8Array(await subtle.exportKey('raw', keys.publicKey)) };
    };
    const alice = await generate();
    const bob = await generate();
    return { alice, bob, aliceKey: await new PairKeyCache(alice.privateKey, alice.publicKey).get(bob.publicKey), bobKey: await new PairKeyCache(bob.privateKey, bob.publicKey).get(alice.publicKey) };
}

function associatedData(box: Uint8Array, binding: BoxBinding): Uint8Array {
    const bound = new TextEncoder().encode(JSON.stringify([binding.purpose, binding.sender, binding.recipient, binding.context ?? '']));
    return new Uint8Array([...box.subarray(0, HEADER_BYTES), ...bound]);
}

describe('sealed box format', () => {
    const binding: BoxBinding = { purpose: 'file-chunk', sender: 'alice', recipient: 'bob', context: 'f#3' };
    const plaintext = new TextEncoder().encode('ninety-six kibibytes, give or take');

    it('a box sealed in Node opens with WebCrypto (a browser peer), and the other way round', async () => {
        const { alice, bob, aliceKey, bobKey } = await pair();
        const box = await sealBox(aliceKey, alice.publicKey, bob.publicKey, binding, plaintext);
        expect(box.byteLength).toBe(plaintext.byteLength + SEALED_BOX_OVERHEAD);
        // Copies: WebCrypto's types take only views over a plain ArrayBuffer.
        const nonce = new Uint8Array(box.subarray(1 + 64, HEADER_BYTES));
        const opened = await subtle.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: new Uint8Array(associatedData(box, binding)) }, bobKey, new Uint8Array(box.subarray(HEADER_BYTES)));
        expect(new TextDecoder().decode(opened)).toBe('ninety-six kibibytes, give or take');

        const header = new Uint8Array(box.subarray(0, HEADER_BYTES));
        const fromBrowser = new Uint8Array([...header, ...new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: new Uint8Array(associatedData(header, binding)) }, aliceKey, plaintext))]);
        expect(new TextDecoder().decode(await openBox(bobKey, fromBrowser, binding))).toBe('ninety-six kibibytes, give or take');
    });

    it('a flipped bit anywhere, or another binding, does not open: SealedPayloadInvalid (tampered)', async () => {
        const { alice, bob, aliceKey, bobKey } = await pair();
        const box = await sealBox(aliceKey, alice.publicKey, bob.publicKey, binding, plaintext);
        for (const at of [0, HEADER_BYTES - 1, HEADER_BYTES, box.byteLength - 1]) {
            const flipped = new Uint8Array(box);
            flipped[at] ^= 1;
            await expect(openBox(bobKey, flipped, binding)).rejects.toMatchObject({ constructor: SealedPayloadInvalid, reason: 'tampered' });
        }
        await expect(openBox(bobKey, box, { ...binding, context: 'f#4' })).rejects.toMatchObject({ reason: 'tampered' });
        await expect(openBox(bobKey, box.subarray(0, HEADER_BYTES + 8), binding)).rejects.toMatchObject({ reason: 'tampered' });
    });
});
