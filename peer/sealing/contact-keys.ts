import { Subject } from 'rxjs';
import { SealedKeyChanged } from '@switchboard/protocol';
import { PeerSetting } from '../storage/entities';
import type { PeerDatabase } from '../storage/peer-database';
import { fingerprintOf } from './key-pair';
import { fromBase64Url, hex, sameBytes, toBase64Url } from './sealed-box';

const PIN_SETTING = 'sealing-pin:';

/** A contact's key is not the one pinned for it. */
export interface KeyChange {
    peerId: string;
    pinnedFingerprint: string;
    offeredFingerprint: string;
    /** Where the new key showed up: the broker's record of the peer (`published`), or a box it sealed (`sealed-box`). */
    seenIn: 'published' | 'sealed-box';
    at: Date;
}

/**
 * The keys of this peer's contacts, pinned on first use in its storage. A key fetched through the broker is only as
 * good as the broker: once pinned, a different key — published or used in a box — is reported on `keyChanged$`
 * and refused (SealedKeyChanged) until the app calls `trust(peerId)`, after the user compared fingerprints.
 */
export class ContactKeys {
    readonly keyChanged$ = new Subject<KeyChange>();
    /** Pins read from storage; `null`: none. */
    protected pins = new Map<string, Uint8Array | null>();
    /** Changed keys, by peer, waiting for `trust`. */
    protected offered = new Map<string, Uint8Array>();

    constructor(protected database: PeerDatabase, protected clock: () => number) {
    }

    async pinned(peerId: string): Promise<Uint8Array | undefined> {
        let pin = this.pins.get(peerId);
        if (pin === undefined) {
            const stored = await this.database.getSetting(PIN_SETTING + peerId);
            pin = (stored && fromBase64Url(stored)) || null;
            this.pins.set(peerId, pin);
        }
        return pin ?? undefined;
    }

    /**
     * Checks `key` against the pin for `peerId`, pinning it if there is none (and it is not `ephemeral`). SealedKeyChanged (and one
     * `keyChanged$` event per new key) if it differs.
     */
    async check(peerId: string, key: Uint8Array, seenIn: KeyChange['seenIn'], ephemeral = false): Promise<void> {
        const pin = await this.pinned(peerId);
        // A key that lives only in the contact's memory changes at each of its starts: nothing to pin.
        if (!pin) return ephemeral ? undefined : this.pin(peerId, key);
        if (sameBytes(pin, key)) return;
        const change: KeyChange = { peerId, pinnedFingerprint: await fingerprintOf(pin), offeredFingerprint: await fingerprintOf(key), seenIn, at: new Date(this.clock()) };
        const known = this.offered.get(peerId);
        this.offered.set(peerId, key);
        if (!known || hex(known) !== hex(key)) this.keyChanged$.next(change);
        const error = new SealedKeyChanged(
            `The key of "${peerId}" changed (pinned ${change.pinnedFingerprint}, now ${change.offeredFingerprint}): nothing is sealed to it or accepted from it until you compare fingerprints with its user and call sealing.trust("${peerId}").`,
            peerId, change.pinnedFingerprint, change.offeredFingerprint,
        );
        error.stack = '';
        throw error;
    }

    /** Pins the changed key last reported for `peerId` (or forgets the pin if none was reported); its fingerprint. */
    async trust(peerId: string): Promise<string | undefined> {
        const key = this.offered.get(peerId);
        this.offered.delete(peerId);
        if (!key) {
            await this.forget(peerId);
            return undefined;
        }
        await this.pin(peerId, key);
        return fingerprintOf(key);
    }

    /** Forgets the pin: the next key seen for `peerId` is pinned again. */
    async forget(peerId: string): Promise<void> {
        this.pins.set(peerId, null);
        this.offered.delete(peerId);
        await this.database.query(PeerSetting).filter({ key: PIN_SETTING + peerId }).deleteMany();
    }

    protected async pin(peerId: string, key: Uint8Array): Promise<void> {
        this.pins.set(peerId, key);
        // Read and written in one serialized transaction: two first payloads of a contact at once pin it once.
        await this.database.write(async session => {
            const setting = await session.query(PeerSetting).filter({ key: PIN_SETTING + peerId }).findOneOrUndefined() ?? new PeerSetting(PIN_SETTING + peerId, '');
            setting.value = toBase64Url(key);
            session.add(setting);
        });
    }
}
