import { Subject } from 'rxjs';
import { DeliveryReceipt, RelayApi, RelayEnvelope, RelayPayload } from '../../shared/relay-api';
import { AccessDenied, QuotaExceeded } from '../../shared/errors';
import { Outbox } from '../outbox';
import { RemotePeer } from '../remote-peer';
import { HeldPayload, ReceivedPayload } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';

export interface RelayOptions {
    /** Payloads one sender may have held here at once. */
    quotaPerSender: number;
    /** TTL when the sender gives none, in seconds. */
    defaultTtlSeconds: number;
}

export const defaultRelayOptions: RelayOptions = { quotaPerSender: 100, defaultTtlSeconds: 7 * 24 * 3600 };

export interface RelayHost {
    readonly id: string;
    to(peerId: string): RemotePeer;
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

    constructor(
        protected database: PeerDatabase,
        protected outbox: Outbox,
        protected host: RelayHost,
        protected options: RelayOptions = defaultRelayOptions,
    ) {
        outbox.handle('relay-deliver', async (recipient, key: string) => this.deliverHeld(key));
        outbox.handle('relay-receipt', async (sender, receipt: DeliveryReceipt) => {
            await this.remote(sender).receipt(new DeliveryReceipt(receipt.payloadId, receipt.recipient, new Date(receipt.deliveredAt), receipt.via));
        });
    }

    // ---- as the relay, for a verified caller ------------------------------------------------------------------

    async forward(sender: string, recipient: string, payload: RelayPayload): Promise<DeliveryReceipt> {
        await this.remote(recipient).deliver(new RelayEnvelope(payload, sender, recipient, this.host.id));
        return new DeliveryReceipt(payload.id, recipient, new Date, this.host.id);
    }

    async store(sender: string, recipient: string, payload: RelayPayload, ttlSeconds?: number): Promise<{ payloadId: string, expiresAt: Date }> {
        const key = sender + ':' + payload.id;
        const existing = await this.database.query(HeldPayload).filter({ key }).findOneOrUndefined();
        if (existing) return { payloadId: payload.id, expiresAt: existing.expiresAt };
        const held = await this.database.query(HeldPayload).filter({ originalSender: sender, state: 'held' }).count();
        if (held >= this.options.quotaPerSender) {
            throw new QuotaExceeded(`This relay holds ${held} payloads from "${sender}" already (limit ${this.options.quotaPerSender}). Wait for deliveries or use another relay.`, this.options.quotaPerSender);
        }
        const now = new Date;
        const expiresAt = new Date(now.getTime() + (ttlSeconds ?? this.options.defaultTtlSeconds) * 1000);
        await this.database.persist(new HeldPayload(key, payload.id, sender, recipient, payload.kind, payload.body, now, expiresAt));
        // The outbox tries at once and again whenever presence reports the recipient online.
        void this.outbox.send(recipient, 'relay-deliver', key, key).catch(() => undefined);
        return { payloadId: payload.id, expiresAt };
    }

    /** Hands the caller everything held for it and forgets it (receipts go to the senders). */
    async pull(recipient: string): Promise<RelayEnvelope[]> {
        const held = await this.database.query(HeldPayload).filter({ recipient, state: 'held' }).orderBy('storedAt').find();
        const envelopes: RelayEnvelope[] = [];
        for (const payload of held) {
            await this.outbox.cancel(payload.key, 'relay-deliver', recipient);
            if (await this.expire(payload)) continue;
            envelopes.push(toEnvelope(payload, this.host.id));
            await this.delivered(payload);
        }
        return envelopes;
    }

    async heldFor(recipient: string): Promise<number> {
        return this.database.query(HeldPayload).filter({ recipient, state: 'held' }).count();
    }

    // ---- as the recipient or the original sender ----------------------------------------------------------------

    async accept(via: string, envelope: RelayEnvelope): Promise<void> {
        if (envelope.recipient !== this.host.id) throw new AccessDenied(`This payload is for "${envelope.recipient}", not for "${this.host.id}".`, 'wrong-recipient');
        const key = envelope.originalSender + ':' + envelope.payload.id;
        if (await this.database.query(ReceivedPayload).filter({ key }).has()) return;
        // The carrier is the caller the broker verified, whatever the envelope says.
        const { payload } = envelope;
        await this.database.persist(new ReceivedPayload(key, payload.id, envelope.originalSender, via, payload.kind, payload.body, envelope.storedAt));
        this.received$.next(new RelayEnvelope(payload, envelope.originalSender, envelope.recipient, via, envelope.storedAt));
    }

    /** Everything received, oldest first, including what arrived before the app subscribed to `received$`. */
    async inbox(limit = 100): Promise<RelayEnvelope[]> {
        const received = await this.database.query(ReceivedPayload).orderBy('receivedAt', 'desc').limit(limit).find();
        return received.reverse().map(r => new RelayEnvelope(new RelayPayload(r.payloadId, r.kind, r.body), r.originalSender, this.host.id, r.via, r.storedAt));
    }

    acceptReceipt(receipt: DeliveryReceipt): void {
        this.receipts$.next(receipt);
    }

    // ---- internals ----------------------------------------------------------------------------------------------

    protected async deliverHeld(key: string): Promise<void> {
        const payload = await this.database.query(HeldPayload).filter({ key }).findOneOrUndefined();
        if (!payload || payload.state !== 'held') return;
        if (await this.expire(payload)) return;
        await this.remote(payload.recipient).deliver(toEnvelope(payload, this.host.id));
        await this.delivered(payload);
    }

    protected async delivered(payload: HeldPayload): Promise<void> {
        payload.state = 'delivered';
        payload.deliveredAt = new Date;
        await this.database.persist(payload);
        const receipt = new DeliveryReceipt(payload.payloadId, payload.recipient, payload.deliveredAt, this.host.id);
        // Not awaited: this may run inside the recipient's outbox lane, and the sender's lane must not wait on it.
        void this.outbox.send(payload.originalSender, 'relay-receipt', receipt, payload.key).catch(() => undefined);
    }

    /** @returns true when the payload's TTL is over; it is then dropped, not delivered. */
    protected async expire(payload: HeldPayload): Promise<boolean> {
        if (payload.expiresAt.getTime() > Date.now()) return false;
        payload.state = 'expired';
        await this.database.persist(payload);
        return true;
    }

    protected remote(peerId: string) {
        return this.host.to(peerId).controller<RelayApi>(RelayApi);
    }
}

function toEnvelope(payload: HeldPayload, via: string): RelayEnvelope {
    return new RelayEnvelope(new RelayPayload(payload.payloadId, payload.kind, payload.body), payload.originalSender, payload.recipient, via, payload.storedAt);
}
