import { DatabaseAdapter, DatabaseSession } from '@deepkit/orm';
import { DeliveryReceipt, RelayApi, RelayEnvelope, RelayPayload, QuotaExceeded } from '@switchboard/protocol';
import { Outbox, OutboxItem } from '../outbox';
import { HeldPayload } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';
import { RelayOptions } from './relay-options';
import { SenderQuota, textBytes } from './sender-quota';

/** Bytes of bodies one `pull` answer carries at most: half the broker's default frame limit (16 MiB). */
const PULL_MAX_BYTES = 8 * 1024 * 1024;
/** Held payloads read at a time while pulling. */
const PULL_PAGE = 8;

/**
 * What this peer, as a relay, holds for offline recipients: persisted with a TTL and a per-sender quota, pushed when
 * the outbox finds the recipient online (or handed over in `pull`), then the original sender gets a receipt (queued
 * too, if the sender is gone by then).
 */
export class HeldPayloads {
    /** What each sender has held here. */
    protected held: SenderQuota;
    /** Held payloads whose push to the recipient is under way, by key: `pull` waits for those to settle. */
    protected pushing = new Map<string, Promise<void>>();

    constructor(
        protected database: PeerDatabase,
        protected outbox: Outbox,
        /** This peer's ID: the carrier named in envelopes and receipts. */
        protected self: () => string,
        protected remote: (peerId: string) => Pick<RelayApi, 'deliver'>,
        protected options: RelayOptions,
        protected now: () => number,
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
        outbox.handle('relay-deliver', async (recipient, key: string) => this.push(key));
        outbox.recover(session => this.undelivered(session));
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
            if (!(error instanceof QuotaExceeded) || !await this.expireFrom(sender)) throw error;
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
                envelopes.push(toEnvelope(payload, this.self()));
                bytes += size;
            }
        }
    }

    async heldFor(recipient: string): Promise<number> {
        return this.database.query(HeldPayload).filter({ recipient, state: 'held' }).count();
    }

    protected async push(key: string): Promise<void> {
        const payload = await this.database.query(HeldPayload).filter({ key }).findOneOrUndefined();
        if (!payload || payload.state !== 'held') return;
        if (await this.expire(payload)) return;
        const push = (async () => {
            await this.remote(payload.recipient).deliver(toEnvelope(payload, this.self()));
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
        const receipt = new DeliveryReceipt(payload.payloadId, payload.recipient, deliveredAt, this.self());
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
    protected async expireFrom(sender: string): Promise<boolean> {
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
}

/** The payload is stored already (a retry): nothing is written again. */
class AlreadyStored extends Error {
    constructor(readonly expiresAt: Date) {
        super('already stored');
    }
}

/** Someone else marked the payload delivered first. */
class NotHeld extends Error {
}

function toEnvelope(payload: HeldPayload, via: string): RelayEnvelope {
    return new RelayEnvelope(new RelayPayload(payload.payloadId, payload.kind, payload.body), payload.originalSender, payload.recipient, via, payload.storedAt);
}
