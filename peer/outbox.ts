import { Subject } from 'rxjs';
import { CircuitOpen, Disconnected, PeerNotFound, PeerOffline, RateLimited, Timeout } from '../shared/errors';
import { OutboxEntry } from './storage/entities';
import { PeerDatabase } from './storage/peer-database';

/** Delivers one entry; throws when it cannot. */
export type OutboxHandler = (recipient: string, payload: any) => Promise<void>;

export type OutboxResult = 'delivered' | 'queued';

/** Errors that mean "not now": the entry stays queued. Anything else is final for that entry. */
export function isTransient(error: unknown): boolean {
    return error instanceof PeerOffline || error instanceof PeerNotFound || error instanceof Timeout
        || error instanceof Disconnected || error instanceof CircuitOpen || error instanceof RateLimited;
}

/**
 * Messages for peers that may be offline. An entry is written to SQLite before the first attempt, so neither the
 * recipient's absence nor this process's restart loses it. Delivery is at least once; receivers deduplicate by
 * message id. Entries for one recipient go out in the order they were queued.
 */
export class Outbox {
    protected handlers = new Map<string, OutboxHandler>();
    protected lanes = new Map<string, Promise<unknown>>();
    /** Entries delivered from the queue (not at their first attempt): `[kind, recipient, payload]`. */
    readonly delivered$ = new Subject<{ kind: string, recipient: string, payload: any }>();

    constructor(protected database: PeerDatabase) {
    }

    handle(kind: string, handler: OutboxHandler): void {
        this.handlers.set(kind, handler);
    }

    /** Writes the entry, then tries it at once (after anything already queued for the recipient). */
    async send(recipient: string, kind: string, payload: unknown, id: string = crypto.randomUUID()): Promise<OutboxResult> {
        const entry = new OutboxEntry(id + ':' + kind + ':' + recipient, recipient, kind, JSON.stringify(payload));
        await this.database.persist(entry);
        return this.inLane(recipient, async () => {
            await this.flushLane(recipient, entry);
            return await this.attempt(entry, false) ? 'delivered' : 'queued';
        });
    }

    /** Tries everything queued, for one recipient or all (e.g. after a reconnect or a restart). */
    async flush(recipient?: string): Promise<void> {
        const queued = await this.database.query(OutboxEntry).filter(recipient ? { state: 'queued', recipient } : { state: 'queued' }).find();
        const recipients = new Set(queued.map(entry => entry.recipient));
        await Promise.all([...recipients].map(r => this.inLane(r, () => this.flushLane(r))));
    }

    /** Drops a queued entry (e.g. the recipient pulled the payload itself). */
    async cancel(id: string, kind: string, recipient: string): Promise<void> {
        await this.database.query(OutboxEntry).filter({ id: id + ':' + kind + ':' + recipient }).deleteMany();
    }

    /** Resolves when no delivery is running (for a clean close). */
    async idle(): Promise<void> {
        await Promise.allSettled([...this.lanes.values()]);
    }

    async pending(recipient?: string): Promise<OutboxEntry[]> {
        return this.database.query(OutboxEntry).filter(recipient ? { state: 'queued', recipient } : { state: 'queued' }).orderBy('createdAt').find();
    }

    protected async flushLane(recipient: string, except?: OutboxEntry): Promise<void> {
        const queued = await this.database.query(OutboxEntry).filter({ state: 'queued', recipient }).orderBy('createdAt').find();
        for (const entry of queued) {
            if (entry.id === except?.id) continue;
            if (!await this.attempt(entry, true)) return;
        }
    }

    /** @returns false when the recipient is not reachable now (the entry stays queued). */
    protected async attempt(entry: OutboxEntry, fromQueue: boolean): Promise<boolean> {
        const handler = this.handlers.get(entry.kind);
        if (!handler) return false;
        const payload = JSON.parse(entry.payload);
        entry.attempts++;
        try {
            await handler(entry.recipient, payload);
        } catch (error) {
            entry.lastError = error instanceof Error ? error.message : String(error);
            if (!isTransient(error)) entry.state = 'failed';
            await this.database.persist(entry);
            if (!isTransient(error)) throw error;
            return false;
        }
        await this.database.remove(entry);
        if (fromQueue) this.delivered$.next({ kind: entry.kind, recipient: entry.recipient, payload });
        return true;
    }

    protected inLane<T>(recipient: string, work: () => Promise<T>): Promise<T> {
        const previous = this.lanes.get(recipient) ?? Promise.resolve();
        const next = previous.then(work, work);
        this.lanes.set(recipient, next.catch(() => undefined));
        return next;
    }
}
