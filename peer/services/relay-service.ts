import { DatabaseAdapter, DatabaseSession, UniqueConstraintFailure } from '@deepkit/orm';
import { Subject } from 'rxjs';
import { DeliveryReceipt, MessagePath, RelayApi, RelayEnvelope, RelayPayload, AccessDenied, QuotaExceeded, matchesPeerPattern } from '@switchboard/protocol';
import { Outbox, OutboxItem } from '../outbox';
import { PayloadPaths } from './payload-paths';
import { RemotePeer } from '../remote-peer';
import { HeldPayload, ReceiptRecord, ReceivedPayload } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';
import type { Sealing } from '../sealing';
import { openRelayPayload, sealRelayPayload } from '../sealing/sealed-payloads';
import { SenderQuota, textBytes } from './sender-quota';

export interface RelayOptions {
    /** Payloads one sender may have held here at once (default 100). */
    quotaPerSender: number;
    /** Bytes (UTF-8 bodies) of the payloads one sender may have held here at once (default 10 MiB). */
    bytesPerSender: number;
    /**
     * Payloads from one original sender this peer keeps in its inbox (`inbox()`, default 1,000); past it, or past
     * `inboxBytesPerSender` (default 10 MiB), that sender's oldest are dropped (`received$` showed them already).
     */
    inboxPerSender: number;
    inboxBytesPerSender: number;
    /** TTL when the sender gives none, in seconds. */
    defaultTtlSeconds: number;
    /**
     * The relays this peer uses: only they may hand it payloads from someone else (vouching for the original
     * sender they verified) and report deliveries of its stored payloads. Exact IDs or `prefix*` patterns. Anyone
     * may still deliver its own payloads directly.
     */
    trustedRelays: string[];
}

export const defaultRelayOptions: RelayOptions = { quotaPerSender: 100, bytesPerSender: 10 * 1024 * 1024, inboxPerSender: 1000, inboxBytesPerSender: 10 * 1024 * 1024, defaultTtlSeconds: 7 * 24 * 3600, trustedRelays: [] };

export interface RelayHost {
    readonly id: string;
    to(peerId: string): RemotePeer;
    /** Seals payloads for their recipient and opens those sealed for us (absent: plaintext only). */
    readonly sealing?: Sealing;
}

/**
 * Relay and store-and-forward. As a relay, this peer forwards payloads or keeps them for offline recipients
 * (persisted, with TTL and a per-sender quota) and hands them over when the broker reports the recipient online,
 * then sends the original sender a receipt (queued too, if the sender is gone by then). As a recipient, it takes
 * each payload once (deduplicated by sender and payload id): at-least-once transport, exactly-once for the app.
 */
export class RelayService {
    /** Payloads for this peer, once each. */
    readonly received$ = new Subject<RelayEnvelope>();
    /** Receipts for payloads this peer had stored at a relay. */
    readonly receipts$ = new Subject<DeliveryReceipt>();
    /** What each sender has held here. */
    protected held: SenderQuota;
    /** What each original sender has in this peer's inbox. */
    protected kept: SenderQuota;
    /** Held payloads whose push to the recipient is under way, by key: `pull` waits for those to settle. */
    protected pushing = new Map<string, Promise<void>>();
    /** `send`: each payload by the best path. */
    protected paths: PayloadPaths;
    /** Kinds of payload another feature takes instead of the inbox (a relayed chat message goes to the chat). */
    protected consumers = new Map<string, (originalSender: string, payload: RelayPayload, via: string) => Promise<void>>();

    /** @internal Built by the peer, never by an app. */
    constructor(
        protected database: PeerDatabase,
        protected outbox: Outbox,
        protected host: RelayHost,
        protected options: RelayOptions = defaultRelayOptions,
        /** Milliseconds since the epoch: stamps payloads and decides their expiry (tests move it instead of waiting). */
        protected now: () => number = Date.now,
    ) {
        this.held = new SenderQuota(
            () => ({ items: this.options.quotaPerSender, bytes: this.options.bytesPerSender }),
            async sender => {
                const held = await this.database.query(HeldPayload).filter({ originalSender: sender, state: 'held' }).select('body').find();
                return { items: held.length, bytes: held.reduce((sum, payload) => sum + textBytes(payload.body), 0) };
            },
            'held payloads',
            'Wait for deliveries or use another relay.',
        );
        this.kept = new SenderQuota(
            () => ({ items: this.options.inboxPerSender, bytes: this.options.inboxBytesPerSender }),
            async sender => {
                const kept = await this.database.query(ReceivedPayload).filter({ originalSender: sender }).select('body').find();
                return { items: kept.length, bytes: kept.reduce((sum, received) => sum + textBytes(received.body), 0) };
            },
            'payloads in the inbox',
            '',
        );
        outbox.handle('relay-deliver', async (recipient, key: string) => this.deliverHeld(key));
        outbox.handle('relay-receipt', async (sender, receipt: DeliveryReceipt) => {
            await this.remote(sender).receipt(new DeliveryReceipt(receipt.payloadId, receipt.recipient, new Date(receipt.deliveredAt), receipt.via));
        });
        outbox.recover(session => this.undelivered(session));
        this.paths = new PayloadPaths(host, outbox, this);
    }

    /**
     * Sends `payload` to `recipient` by the best path (see PayloadPaths): `direct` or `broker` when it took it now,
     * `relay` when an online relay both trust holds it, `outbox` when it waits here for the recipient to come back.
     * The recipient takes it once, as from this peer (`received$`, `inbox()`), whichever path it came by.
     */
    async send(recipient: string, payload: RelayPayload): Promise<MessagePath> {
        return this.paths.send(recipient, payload);
    }

    // ---- as the relay, for a verified caller ------------------------------------------------------------------

    async forward(sender: string, recipient: string, payload: RelayPayload): Promise<DeliveryReceipt> {
        await this.remote(recipient).deliver(new RelayEnvelope(payload, sender, recipient, this.host.id));
        return new DeliveryReceipt(payload.id, recipient, new Date(this.now()), this.host.id);
    }

    /**
     * Keeps the payload and answers once it is committed together with its delivery entry: what this relay
     * acknowledges, it pushes when the recipient is online (or hands over in `pull`), even after a crash. A retry
     * of the same payload (same sender and id) is acknowledged again and stored once.
     */
    async store(sender: string, recipient: string, payload: RelayPayload, ttlSeconds?: number): Promise<{ payloadId: string, expiresAt: Date }> {
        const key = sender + ':' + payload.id;
        const now = new Date(this.now());
        const expiresAt = new Date(now.getTime() + (ttlSeconds ?? this.options.defaultTtlSeconds) * 1000);
        // A retry of a payload held already is acknowledged, even by a sender at its quota.
        const stored = await this.database.query(HeldPayload).filter({ key }).findOneOrUndefined();
        if (stored) return { payloadId: payload.id, expiresAt: stored.expiresAt };
        const bytes = textBytes(payload.body);
        await this.held.reserve(sender, bytes).catch(async error => {
            // Payloads whose TTL ended for a recipient that never came back still count until touched: drop them first.
            if (!(error instanceof QuotaExceeded) || !await this.expireHeldFrom(sender)) throw error;
            await this.held.reserve(sender, bytes);
        });
        try {
            // The checks run in the transaction too, so concurrent stores cannot pass the quota or store twice.
            await this.outbox.enqueue({ recipient, kind: 'relay-deliver', payload: key, id: key }, async session => {
                const existing = await session.query(HeldPayload).filter({ key }).findOneOrUndefined();
                if (existing) throw new AlreadyStored(existing.expiresAt);
                const held = await session.query(HeldPayload).filter({ originalSender: sender, state: 'held' }).count();
                if (held >= this.options.quotaPerSender) {
                    throw new QuotaExceeded(`This relay holds ${held} payloads from "${sender}" already (limit ${this.options.quotaPerSender}). Wait for deliveries or use another relay.`, this.options.quotaPerSender);
                }
                session.add(new HeldPayload(key, payload.id, sender, recipient, payload.kind, payload.body, now, expiresAt));
            });
        } catch (error) {
            this.held.release(sender, 1, bytes);
            if (error instanceof AlreadyStored) return { payloadId: payload.id, expiresAt: error.expiresAt };
            throw error;
        }
        return { payloadId: payload.id, expiresAt };
    }

    /**
     * Hands the caller what is held for it, oldest first, and forgets it (receipts go to the senders): at most
     * PULL_MAX_BYTES of bodies a call (at least one payload), so the answer fits in a frame; the caller pulls again
     * until it gets none. Read a few at a time: held bodies are up to a megabyte each.
     */
    async pull(recipient: string): Promise<RelayEnvelope[]> {
        const envelopes: RelayEnvelope[] = [];
        let bytes = 0;
        paging: for (;;) {
            const page = await this.database.query(HeldPayload).filter({ recipient, state: 'held' }).orderBy('storedAt').limit(PULL_PAGE).find();
            if (!page.length) return envelopes;
            for (const payload of page) {
                const size = textBytes(payload.body);
                if (envelopes.length && bytes + size > PULL_MAX_BYTES) return envelopes;
                // Being pushed right now: handing it over here too would deliver it twice (a pull answer is not
                // deduplicated by the recipient's inbox). Wait for the push; if it failed, the payload is still held
                // and this pull takes it from the page read again.
                const push = this.pushing.get(payload.key);
                if (push) {
                    await push.catch(() => undefined);
                    continue paging;
                }
                await this.outbox.cancel(payload.key, 'relay-deliver', recipient);
                if (await this.expire(payload)) continue;
                // Pushed meanwhile: the recipient has it already.
                if (!await this.delivered(payload)) continue;
                envelopes.push(toEnvelope(payload, this.host.id));
                bytes += size;
            }
        }
    }

    async heldFor(recipient: string): Promise<number> {
        return this.database.query(HeldPayload).filter({ recipient, state: 'held' }).count();
    }

    // ---- as the recipient or the original sender ----------------------------------------------------------------

    /** An envelope as its original sender wrote it: one taken with `pull()` is as the relay holds it, maybe sealed. */
    async open(envelope: RelayEnvelope): Promise<RelayEnvelope> {
        const payload = await openRelayPayload(this.host.sealing, envelope.originalSender, envelope.payload);
        return new RelayEnvelope(payload, envelope.originalSender, envelope.recipient, envelope.via, envelope.storedAt);
    }

    /**
     * Hands `payload` for `recipient` to the relay `via`, sealed for the recipient when it has a key (the relay keeps
     * ciphertext): stored until the recipient is online (TTL `ttlSeconds`), or with `forward`, only if it is online now.
     */
    async sendVia(via: string, recipient: string, payload: RelayPayload, options: { ttlSeconds?: number, forward?: boolean } = {}): Promise<void> {
        const sealed = await sealRelayPayload(this.host.sealing, recipient, payload, !options.forward);
        if (options.forward) await this.remote(via).forward(recipient, sealed);
        else await this.remote(via).store(recipient, sealed, options.ttlSeconds);
    }

    /**
     * A payload handed to us by `via`, the caller the broker verified. The original sender in the envelope is only
     * a claim: believed when it is the caller itself, or when the caller is a relay we trust (it verified the sender
     * when it took the payload, so we trust it as far as we trust that relay). Anyone else is refused.
     */
    async accept(via: string, envelope: RelayEnvelope): Promise<void> {
        if (envelope.recipient !== this.host.id) throw denied(`This payload is for "${envelope.recipient}", not for "${this.host.id}".`, 'wrong-recipient');
        if (envelope.originalSender !== via && !this.trusts(via)) {
            throw denied(`"${via}" may deliver only its own payloads here: this peer does not use it as a relay, so it cannot vouch for "${envelope.originalSender}". Add it to the recipient's relay.trustedRelays if it should.`, 'untrusted-relay');
        }
        // Sealed for us end to end: opened before anything reads it; SealedPayloadInvalid goes back to the carrier.
        const payload = await openRelayPayload(this.host.sealing, envelope.originalSender, envelope.payload);
        // Its consumer deduplicates (the chat stores a message once by sender and id); its error goes back to the carrier.
        const consumer = this.consumers.get(payload.kind);
        if (consumer) return consumer(envelope.originalSender, payload, via);
        const key = envelope.originalSender + ':' + payload.id;
        if (await this.database.query(ReceivedPayload).filter({ key }).has()) return;
        // The carrier is the caller the broker verified, whatever the envelope says.
        const bytes = textBytes(payload.body);
        // Counted before it is written: the sender's tally, read from storage on its first payload, must not count it twice.
        const over = await this.kept.add(envelope.originalSender, bytes);
        try {
            await this.database.persist(new ReceivedPayload(key, payload.id, envelope.originalSender, via, payload.kind, payload.body, envelope.storedAt));
        } catch (error) {
            this.kept.release(envelope.originalSender, 1, bytes);
            // The same payload, delivered twice at once (pushed and pulled): the other delivery took it.
            if (error instanceof UniqueConstraintFailure) return;
            throw error;
        }
        if (over) await this.dropOldest(envelope.originalSender);
        this.received$.next(new RelayEnvelope(payload, envelope.originalSender, envelope.recipient, via, envelope.storedAt));
    }

    /** Makes room in the inbox for `sender`'s newest payloads: its oldest go, one by one, until it is within limits. */
    protected async dropOldest(sender: string): Promise<void> {
        while (this.kept.exceeds(sender)) {
            const oldest = await this.database.query(ReceivedPayload).filter({ originalSender: sender }).orderBy('receivedAt').findOneOrUndefined();
            if (!oldest) return;
            const { modified } = await this.database.query(ReceivedPayload).filter({ key: oldest.key }).deleteMany();
            // A concurrent delivery of the same sender dropped it already, and released it.
            if (modified) this.kept.release(sender, 1, textBytes(oldest.body));
        }
    }

    /** Everything received, oldest first, including what arrived before the app subscribed to `received$`. */
    async inbox(limit = 100): Promise<RelayEnvelope[]> {
        const received = await this.database.query(ReceivedPayload).orderBy('receivedAt', 'desc').limit(limit).find();
        return received.reverse().map(r => new RelayEnvelope(new RelayPayload(r.payloadId, r.kind, r.body), r.originalSender, this.host.id, r.via, r.storedAt));
    }

    /**
     * A receipt from `caller` (verified by the broker): taken from the recipient itself, or from a relay we use that
     * names itself as the carrier; from anyone else it would be a forged delivery report. Reported once per
     * recipient and payload: receipts come from an outbox, at least once.
     */
    async acceptReceipt(caller: string, receipt: DeliveryReceipt): Promise<void> {
        const fromRecipient = caller === receipt.recipient;
        const fromOurRelay = caller === receipt.via && this.trusts(caller);
        if (!fromRecipient && !fromOurRelay) {
            throw denied(`"${caller}" may not report deliveries to "${receipt.recipient}" via "${receipt.via}": only the recipient or a relay this peer uses may.`, 'untrusted-receipt');
        }
        const key = receipt.recipient + ':' + receipt.payloadId;
        if (await this.database.query(ReceiptRecord).filter({ key }).has()) return;
        try {
            await this.database.persist(new ReceiptRecord(key));
        } catch (error) {
            if (error instanceof UniqueConstraintFailure) return;
            throw error;
        }
        this.receipts$.next(receipt);
    }

    /** Payloads of `kind` delivered to this peer go to `handler` instead of the inbox and `received$`. */
    consume(kind: string, handler: (originalSender: string, payload: RelayPayload, via: string) => Promise<void>): void {
        this.consumers.set(kind, handler);
    }

    /** Whether `peerId` is one of the relays this peer uses (`trustedRelays`). */
    trusts(peerId: string): boolean {
        return this.options.trustedRelays.some(pattern => matchesPeerPattern(pattern, peerId));
    }

    // ---- internals ----------------------------------------------------------------------------------------------

    protected async deliverHeld(key: string): Promise<void> {
        const payload = await this.database.query(HeldPayload).filter({ key }).findOneOrUndefined();
        if (!payload || payload.state !== 'held') return;
        if (await this.expire(payload)) return;
        const push = (async () => {
            await this.remote(payload.recipient).deliver(toEnvelope(payload, this.host.id));
            await this.delivered(payload);
        })();
        this.pushing.set(key, push);
        try {
            await push;
        } finally {
            this.pushing.delete(key);
        }
    }

    /**
     * Marks the payload delivered and queues the sender's receipt, in one transaction.
     * @returns false when it was no longer held (pushed and pulled at once: the other one reports it).
     */
    protected async delivered(payload: HeldPayload): Promise<boolean> {
        const deliveredAt = new Date(this.now());
        const receipt = new DeliveryReceipt(payload.payloadId, payload.recipient, deliveredAt, this.host.id);
        try {
            // The receipt's delivery is not awaited: this runs inside the recipient's drain, which must not wait for
            // the sender's.
            await this.outbox.enqueue({ recipient: payload.originalSender, kind: 'relay-receipt', payload: receipt, id: payload.key }, async session => {
                const { modified } = await session.query(HeldPayload).filter({ key: payload.key, state: 'held' }).patchOne({ state: 'delivered', deliveredAt });
                if (!modified) throw new NotHeld();
            });
            this.held.release(payload.originalSender, 1, textBytes(payload.body));
            return true;
        } catch (error) {
            if (error instanceof NotHeld) return false;
            throw error;
        }
    }

    /**
     * Payloads held with no delivery entry: what a crash of an older version left between acknowledging a payload
     * and writing its entry. The outbox queues them again (it skips those that have an entry).
     */
    protected async undelivered(session: DatabaseSession<DatabaseAdapter>): Promise<OutboxItem[]> {
        const held = await session.query(HeldPayload).filter({ state: 'held' }).orderBy('storedAt').find();
        return held.map(payload => ({ recipient: payload.recipient, kind: 'relay-deliver', payload: payload.key, id: payload.key }));
    }

    /** Drops `sender`'s held payloads whose TTL is over. @returns whether there were any. */
    protected async expireHeldFrom(sender: string): Promise<boolean> {
        const over = await this.database.query(HeldPayload).filter({ originalSender: sender, state: 'held', expiresAt: { $lte: new Date(this.now()) } }).find();
        for (const payload of over) await this.expire(payload);
        return over.length > 0;
    }

    /** @returns true when the payload's TTL is over; it is then dropped, not delivered. */
    protected async expire(payload: HeldPayload): Promise<boolean> {
        if (payload.expiresAt.getTime() > this.now()) return false;
        payload.state = 'expired';
        await this.database.persist(payload);
        this.held.release(payload.originalSender, 1, textBytes(payload.body));
        return true;
    }

    protected remote(peerId: string) {
        return this.host.to(peerId).controller<RelayApi>(RelayApi);
    }
}

/** Bytes of bodies one `pull` answer carries at most: half the broker's default frame limit (16 MiB). */
const PULL_MAX_BYTES = 8 * 1024 * 1024;
/** Held payloads read at a time while pulling. */
const PULL_PAGE = 8;

/** The payload is stored already (a retry): nothing is written again. */
class AlreadyStored extends Error {
    constructor(readonly expiresAt: Date) {
        super('already stored');
    }
}

/** Someone else marked the payload delivered first. */
class NotHeld extends Error {
}

function denied(message: string, reason: string): AccessDenied {
    const error = new AccessDenied(message, reason);
    error.stack = '';
    return error;
}

function toEnvelope(payload: HeldPayload, via: string): RelayEnvelope {
    return new RelayEnvelope(new RelayPayload(payload.payloadId, payload.kind, payload.body), payload.originalSender, payload.recipient, via, payload.storedAt);
}
