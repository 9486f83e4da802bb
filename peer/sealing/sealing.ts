import { ReceiveType, serialize, validatedDeserialize } from '@deepkit/type';
import { Observable, Subject } from 'rxjs';
import { PeerNotFound, PresenceEvent, SealedKeyChanged, SealedPayloadInvalid } from '@switchboard/protocol';
import type { PeerDatabase } from '../storage/peer-database';
import { ContactKeys } from './contact-keys';
import { fingerprintOf, keyCapability, keyFromCapabilities, loadKeyPair, PublishedKey, SealingKeyPair } from './key-pair';
import { BoxBinding, invalid, openBox, PairKeyCache, readHeader, sameBytes, sealBox } from './sealed-box';

export interface SealingOptions {
    /**
     * Seal chat messages, relay payloads, file chunks and collaboration updates to peers that published a key
     * (default true). `false`: this peer publishes no key, seals nothing and opens nothing; everything travels in
     * plaintext, as with a stock Deepkit client.
     */
    enabled: boolean;
    /** How long a contact's published key (or that it has none) is taken from the broker before asking again; default 60 000 ms. */
    lookupCacheMs: number;
    /** Largest box this peer opens (default 2 MiB); bigger ones are refused unread. */
    maxBoxBytes: number;
    /**
     * This peer's key lives only in memory (a new one at each start): it is published as such and contacts do not
     * pin it. The peer sets it for `:memory:` storage.
     */
    ephemeral: boolean;
}

export const defaultSealingOptions: SealingOptions = { enabled: true, lookupCacheMs: 60_000, maxBoxBytes: 2 * 1024 * 1024, ephemeral: false };

export interface SealOptions {
    /**
     * The payload is held for the recipient (a relay stores it): refused for a recipient whose key lives in memory,
     * which will have another key when it is back.
     */
    held?: boolean;
}

/** What sealing needs of the peer: its ID and the broker's record of other peers (their published keys). */
export interface SealingHost {
    readonly id: string;
    readonly broker: { getPeer(peerId: string): Promise<{ capabilities: string[] }> };
    /** Presence of followed peers: a contact's key as it announces it, fresher than a cached lookup. */
    readonly presence$?: Observable<PresenceEvent>;
}

/**
 * `peer.sealing`: end-to-end sealed payloads between SDK peers (see sealed-box.ts for the cryptography).
 *
 * How a sender knows whether to seal: a recipient's key is the one pinned for it, else the one it published with its
 * registration (an `x25519:` capability kept in the broker's record of it, offline too); with neither — a stock
 * Deepkit client, or a peer with sealing off — the payload goes in plaintext. A pinned contact is always sealed to,
 * even if the broker stops showing its key, so a broker cannot turn sealing off by hiding keys.
 */
export class Sealing {
    readonly contacts: ContactKeys;
    readonly options: SealingOptions;
    /**
     * Every sealed payload this peer refused (SealedPayloadInvalid, SealedKeyChanged), with its sender: nothing of it
     * was stored or applied, and whoever handed it over got the same error (a chat sender's message shows `failed`).
     */
    readonly rejected$ = new Subject<SealedPayloadInvalid | SealedKeyChanged>();
    protected keys?: Promise<{ pair: SealingKeyPair, pairKeys: PairKeyCache }>;
    /** Published keys as the broker showed them, with when: a key (or none) is asked for once per `lookupCacheMs`. */
    protected published = new Map<string, { key?: PublishedKey, at: number }>();

    constructor(protected database: PeerDatabase, protected host: SealingHost, options: Partial<SealingOptions> | false = {}, protected clock: () => number = Date.now) {
        this.options = { ...defaultSealingOptions, ...(options === false ? { enabled: false } : options) };
        this.contacts = new ContactKeys(database, clock);
        host.presence$?.subscribe(event => {
            // A peer that (re)connects may have a new key: its announce, which follows, says which.
            if (event.kind === 'online' || event.kind === 'offline') this.published.delete(event.peerId);
            else if (event.kind === 'capabilities') this.remember(event.peerId, keyFromCapabilities(event.capabilities));
        });
    }

    get enabled(): boolean {
        return this.options.enabled;
    }

    /** A contact's key differs from the one pinned for it (see ContactKeys). */
    get keyChanged$() {
        return this.contacts.keyChanged$;
    }

    /** This peer's public key, raw (32 bytes); undefined with sealing off. */
    async publicKey(): Promise<Uint8Array | undefined> {
        return this.enabled ? (await this.ownKeys()).pair.publicKey : undefined;
    }

    /** This peer's fingerprint, for its user to read to a contact (`xxxx xxxx …`); undefined with sealing off. */
    async fingerprint(): Promise<string | undefined> {
        const key = await this.publicKey();
        return key && fingerprintOf(key);
    }

    /**
     * The fingerprint of the key this peer seals to for `peerId` (pinned, else published), if any: what its user should
     * read out as their own. SealedKeyChanged if its published key is not the pinned one.
     */
    async contactFingerprint(peerId: string): Promise<string | undefined> {
        const found = await this.keyFor(peerId);
        return found && fingerprintOf(found.key);
    }

    /** Accepts the changed key last reported for `peerId` on `keyChanged$`; resolves with its fingerprint. */
    trust(peerId: string): Promise<string | undefined> {
        this.published.delete(peerId);
        return this.contacts.trust(peerId);
    }

    /** The app's capabilities plus this peer's published key: announced with every registration. */
    async capabilities(capabilities: readonly string[]): Promise<string[]> {
        const key = await this.publicKey();
        return key ? [...capabilities, keyCapability(key, this.options.ephemeral)] : [...capabilities];
    }

    /**
     * `plaintext` sealed for `recipient`, or undefined when it has no key (send in plaintext). SealedKeyChanged when
     * its published key is not the pinned one.
     */
    async seal(recipient: string, purpose: string, plaintext: Uint8Array, context?: string, options: SealOptions = {}): Promise<Uint8Array | undefined> {
        if (!this.enabled) return undefined;
        const found = await this.keyFor(recipient);
        if (!found) return undefined;
        if (options.held && found.ephemeral) {
            throw invalid(`Cannot seal a ${purpose} payload to be held for "${recipient}": its key lives in memory and is replaced when it restarts, so it could not open it. It waits in the sender's outbox instead; give "${recipient}" a storage file to receive sealed payloads through relays.`, 'recipient-key-ephemeral', recipient);
        }
        const key = found.key;
        const { pair, pairKeys } = await this.ownKeys();
        return sealBox(await pairKeys.get(key), pair.publicKey, key, { purpose, sender: this.host.id, recipient, context }, plaintext, this.options.ephemeral);
    }

    /**
     * Opens a box `sender` (the broker-verified caller, or the sender a relay vouched for) sealed for this peer.
     * SealedPayloadInvalid if it does not open; SealedKeyChanged if `sender` sealed with a key other than its pin.
     */
    async open(sender: string, purpose: string, box: Uint8Array, context?: string): Promise<Uint8Array> {
        try {
            return await this.openOrThrow(sender, purpose, box, context);
        } catch (error) {
            if (error instanceof SealedPayloadInvalid || error instanceof SealedKeyChanged) this.rejected$.next(error);
            throw error;
        }
    }

    protected async openOrThrow(sender: string, purpose: string, box: Uint8Array, context?: string): Promise<Uint8Array> {
        const binding: BoxBinding = { purpose, sender, recipient: this.host.id, context };
        if (!this.enabled) throw invalid(`This peer has sealing turned off and cannot open the sealed ${purpose} payload from "${sender}"; the sender should forget its pinned key (sealing.trust("${this.host.id}")).`, 'no-key', sender);
        if (!(box instanceof Uint8Array) || box.byteLength > this.options.maxBoxBytes) throw invalid(`The sealed ${purpose} payload from "${sender}" is larger than ${this.options.maxBoxBytes} bytes, this peer's sealing.maxBoxBytes; it was dropped.`, 'too-large', sender);
        const header = readHeader(box, binding);
        const { pair, pairKeys } = await this.ownKeys();
        if (!sameBytes(header.recipientKey, pair.publicKey)) {
            throw invalid(`"${sender}" sealed a ${purpose} payload to a key this peer no longer has (its storage was reset?); it was dropped. "${sender}" should call sealing.trust("${this.host.id}") after comparing fingerprints.`, 'wrong-recipient-key', sender);
        }
        await this.contacts.check(sender, header.senderKey, 'sealed-box', header.ephemeralSender);
        return openBox(await pairKeys.get(header.senderKey), box, binding);
    }

    /** Whether payloads for `peerId` are sealed: sealing is on and it has a key (SealedKeyChanged if not the pinned one). */
    async sealsTo(peerId: string): Promise<boolean> {
        return this.enabled && !!await this.keyFor(peerId);
    }


    /**
     * A payload the SDK seals whenever it can (chat, collaboration) came in plaintext from `sender`: refused if this peer
     * pinned a key for it — its SDK would have sealed it, so a plaintext one was made by someone else (a broker can
     * claim any sender) or by a contact that turned sealing off (then `sealing.trust(sender)` forgets the pin).
     */
    async assertPlaintextAllowed(sender: string, purpose: string): Promise<void> {
        if (!this.enabled || !await this.contacts.pinned(sender)) return;
        const error = invalid(`A ${purpose} payload from "${sender}" came in plaintext, but "${sender}" has a pinned key and its payloads are sealed: it was dropped. If "${sender}" turned sealing off, call sealing.trust("${sender}") to forget its key.`, 'plaintext-from-sealed-contact', sender);
        this.rejected$.next(error);
        throw error;
    }

    /** A file chunk's box opened; undefined if it does not open (SealedPayloadInvalid, on `rejected$`): fetch it again. */
    async openChunk(sharer: string, box: Uint8Array, context: string): Promise<Uint8Array | undefined> {
        return this.open(sharer, 'file-chunk', box, context).catch(error => {
            if (error instanceof SealedPayloadInvalid) return undefined;
            throw error;
        });
    }

    /** `value` (of type T) sealed as JSON; undefined when the recipient has no key. */
    async sealValue<T>(recipient: string, purpose: string, value: T, context?: string, options: SealOptions = {}, type?: ReceiveType<T>): Promise<Uint8Array | undefined> {
        if (!this.enabled) return undefined;
        return this.seal(recipient, purpose, new TextEncoder().encode(JSON.stringify(serialize<T>(value, undefined, undefined, undefined, type))), context, options);
    }

    /** Opens a value sealed by `sealValue` and validates it as T, as if it had arrived in plaintext. */
    async openValue<T>(sender: string, purpose: string, box: Uint8Array, context?: string, type?: ReceiveType<T>): Promise<T> {
        const plaintext = await this.open(sender, purpose, box, context);
        let json: unknown;
        try {
            json = JSON.parse(new TextDecoder().decode(plaintext));
        } catch {
            const error = invalid(`The sealed ${purpose} payload from "${sender}" opened but holds no JSON; it was dropped.`, 'malformed', sender);
            this.rejected$.next(error);
            throw error;
        }
        return validatedDeserialize<T>(json, undefined, undefined, undefined, type);
    }

    /** The key to seal to: the pinned one, else the published one (pinned now); undefined if there is neither. */
    protected async keyFor(peerId: string): Promise<PublishedKey | undefined> {
        const pinned = await this.contacts.pinned(peerId);
        let published: PublishedKey | undefined;
        try {
            published = await this.lookup(peerId);
        } catch (error) {
            // The broker cannot be asked (it is down; a direct link still carries calls): the pin, or the last key seen.
            const known = pinned ? { key: pinned, ephemeral: false } : this.published.get(peerId)?.key;
            if (known) return known;
            throw error;
        }
        if (published) await this.contacts.check(peerId, published.key, 'published', published.ephemeral);
        return pinned ? { key: pinned, ephemeral: false } : published;
    }

    /**
     * Runs `attempt` (a sealed send to `recipient`) once more with a fresh look at its key when the recipient says the
     * box was sealed for a key it no longer has (it restarted with a new one since our last look).
     */
    async withFreshKey<T>(recipient: string, attempt: () => Promise<T>): Promise<T> {
        try {
            return await attempt();
        } catch (error) {
            if (!(error instanceof SealedPayloadInvalid) || error.reason !== 'wrong-recipient-key') throw error;
            this.published.delete(recipient);
            return attempt();
        }
    }

    protected async lookup(peerId: string): Promise<PublishedKey | undefined> {
        const now = this.clock();
        const cached = this.published.get(peerId);
        if (cached && now - cached.at < this.options.lookupCacheMs) return cached.key;
        let key: PublishedKey | undefined;
        try {
            key = keyFromCapabilities((await this.host.broker.getPeer(peerId)).capabilities);
        } catch (error) {
            // Unknown to the broker: no key (the call itself fails with PeerNotFound). Anything else: try again later.
            if (!(error instanceof PeerNotFound)) throw error;
        }
        this.remember(peerId, key);
        return key;
    }

    protected remember(peerId: string, key: PublishedKey | undefined): void {
        this.published.delete(peerId);
        if (this.published.size >= 10_000) this.published.delete(this.published.keys().next().value!);
        this.published.set(peerId, { key, at: this.clock() });
    }

    protected ownKeys(): Promise<{ pair: SealingKeyPair, pairKeys: PairKeyCache }> {
        this.keys ??= loadKeyPair(this.database).then(pair => ({ pair, pairKeys: new PairKeyCache(pair.privateKey, pair.publicKey) }));
        // A failure (storage closed) is not cached: the next use tries again.
        this.keys.catch(() => this.keys = undefined);
        return this.keys;
    }
}
