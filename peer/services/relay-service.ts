import { UniqueConstraintFailure } from '@deepkit/orm';
import { Subject } from 'rxjs';
import { DeliveryReceipt, MessagePath, RelayApi, RelayEnvelope, RelayPayload, AccessDenied, matchesPeerPattern } from '@switchboard/protocol';
import { Outbox } from '../outbox';
import { PayloadPaths } from './payload-paths';
import { RemotePeer } from '../remote-peer';
import { ReceiptRecord, ReceivedPayload } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';
import type { Sealing } from '../sealing';
import { openRelayPayload, sealRelayPayload } from '../sealing/sealed-payloads';
import { SenderQuota, textBytes } from './sender-quota';
import { HeldPayloads } from './held-payloads';
import { defaultRelayOptions, RelayOptions } from './relay-options';

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
    /** As the relay: what is held here for offline recipients. */
    protected held: HeldPayloads;
    /** What each original sender has in this peer's inbox. */
    protected kept: SenderQuota;
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
        this.held = new HeldPayloads(database, outbox, () => this.host.id, peerId => this.remote(peerId), options, now);
        this.kept = new SenderQuota(
            () => ({ items: this.options.inboxPerSender, bytes: this.options.inboxBytesPerSender }),
            async sender => {
                const kept = await this.database.query(ReceivedPayload).filter({ originalSender: sender }).select('body').find();
                return { items: kept.length, bytes: kept.reduce((sum, received) => sum + textBytes(received.body), 0) };
            },
            'payloads in the inbox',
            '',
        );
        outbox.handle('relay-receipt', async (sender, receipt: DeliveryReceipt) => {
            await this.remote(sender).receipt(new DeliveryReceipt(receipt.payloadId, receipt.recipient, new Date(receipt.deliveredAt), receipt.via));
        });
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
        return this.held.store(sender, recipient, payload, ttlSeconds);
    }

    /**
     * Hands the caller what is held for it, oldest first, and forgets it (receipts go to the senders): at most 8 MiB
     * of bodies a call (at least one payload), so the answer fits in a frame; the caller pulls again until it gets none.
     */
    async pull(recipient: string): Promise<RelayEnvelope[]> {
        return this.held.pull(recipient);
    }

    async heldFor(recipient: string): Promise<number> {
        return this.held.heldFor(recipient);
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

    protected remote(peerId: string) {
        return this.host.to(peerId).controller<RelayApi>(RelayApi);
    }
}

function denied(message: string, reason: string): AccessDenied {
    const error = new AccessDenied(message, reason);
    error.stack = '';
    return error;
}
