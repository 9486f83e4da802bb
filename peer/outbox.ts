import { DatabaseAdapter, DatabaseSession } from '@deepkit/orm';
import { Subject } from 'rxjs';
import { CircuitOpen, Disconnected, PeerNotFound, PeerOffline, RateLimited, Timeout } from '@switchboard/protocol';
import { OutboxEntry } from './storage/entities';
import { PeerDatabase } from './storage/peer-database';

/** Delivers one entry; throws when it cannot. */
export type OutboxHandler = (recipient: string, payload: any) => Promise<void>;

export type OutboxResult = 'delivered' | 'queued';

/** What to queue: for `enqueue`, and what a recovery pass finds missing. */
export interface OutboxItem {
    recipient: string;
    kind: string;
    payload: unknown;
    /** The message id; one entry per id, kind and recipient. Default: a new UUID. */
    id?: string;
}

/**
 * Finds what should be queued but may not be: what an older version, which wrote records and their entries apart,
 * left behind when it crashed between the two. Reads through `session` (it runs inside the outbox's transaction).
 */
export type OutboxRecovery = (session: DatabaseSession<DatabaseAdapter>) => Promise<OutboxItem[]>;

export interface Queued {
    readonly entry: OutboxEntry;
    /**
     * `delivered` once the recipient has it; `queued` when the recipient is not reachable now (it goes out when it
     * is); rejects with the recipient's error when delivery failed for good. Ignoring it is fine.
     */
    readonly outcome: Promise<OutboxResult>;
}

/** Errors that mean "not now": the entry stays queued. Anything else is final for that entry. */
export function isTransient(error: unknown): boolean {
    return error instanceof PeerOffline || error instanceof PeerNotFound || error instanceof Timeout
        || error instanceof Disconnected || error instanceof CircuitOpen || error instanceof RateLimited;
}

/**
 * Entries read at a time by a drain once the recipient takes them. It reads only the head first: for an offline
 * recipient, each send costs one row however long the queue is.
 */
const DRAIN_BATCH = 16;

interface Lane {
    /** Something was queued or flushed while the drain ran: look once more before stopping. */
    again: boolean;
    done: Promise<void>;
}

interface Waiter {
    resolve(result: OutboxResult): void;
    reject(error: unknown): void;
}

/**
 * Messages for peers that may be offline. An entry is committed to SQLite before the first attempt (with the record
 * it carries, when the caller gives one), so neither the recipient's absence nor a crash of this process loses it.
 *
 * Each recipient has one drain: a loop that sends its entries strictly in the order they were queued, one at a
 * time, each once. It stops at the first entry the recipient cannot take now and starts again when something is
 * queued for it or `flush` is called (the broker reports it back, this peer reconnects). Delivery is at least once
 * across crashes (receivers deduplicate by message id) and once otherwise.
 */
export class Outbox {
    /** Entries delivered after waiting in the queue (not at their first attempt). */
    readonly delivered$ = new Subject<{ kind: string, recipient: string, payload: any }>();

    protected handlers = new Map<string, OutboxHandler>();
    protected recoveries: OutboxRecovery[] = [];
    protected lanes = new Map<string, Lane>();
    protected waiters = new Map<string, Map<string, Waiter>>();
    /** Recipients that may have queued entries (all of them after `prepare`, kept up to date by enqueue and drains). */
    protected queuedFor = new Set<string>();
    /** The next entry's sequence; known after the first write of this process (see `prepare`). */
    protected nextSequence?: number;

    /** @internal Built by the peer, never by an app. */
    constructor(protected database: PeerDatabase) {
    }

    handle(kind: string, handler: OutboxHandler): void {
        this.handlers.set(kind, handler);
    }

    /** Adds a recovery pass, run once before this process first queues or flushes anything. */
    recover(recovery: OutboxRecovery): void {
        this.recoveries.push(recovery);
    }

    /** Queues `payload` and waits for its first attempt (see `Queued.outcome`). */
    async send(recipient: string, kind: string, payload: unknown, id?: string): Promise<OutboxResult> {
        const queued = await this.enqueue({ recipient, kind, payload, id });
        return queued.outcome;
    }

    /**
     * Commits an entry (and whatever `alongside` adds to the same session: the record it delivers) in one
     * transaction, then wakes the recipient's drain. Resolves once committed; entries go out in the order of the
     * calls. If `alongside` throws, nothing is written and the error is rethrown.
     */
    async enqueue(item: OutboxItem, alongside?: (session: DatabaseSession<DatabaseAdapter>) => unknown): Promise<Queued> {
        const entry = toEntry(item);
        this.queuedFor.add(entry.recipient);
        // Called synchronously: write() keeps the order of calls, so the order of sequences is the order of sends.
        await this.write(async session => {
            entry.sequence = this.nextSequence!++;
            session.add(entry);
            await alongside?.(session);
        });
        const outcome = new Promise<OutboxResult>((resolve, reject) => this.waitersOf(entry.recipient).set(entry.id, { resolve, reject }));
        outcome.catch(() => undefined);
        this.wake(entry.recipient);
        return { entry, outcome };
    }

    /** Tries everything queued, for one recipient or all (e.g. after a reconnect or a restart). */
    async flush(recipient?: string): Promise<void> {
        if (this.nextSequence === undefined) await this.write(async () => undefined);
        // Every peer flushes for every peer that comes online: for one with nothing queued that must cost no query.
        if (recipient !== undefined && !this.queuedFor.has(recipient)) return;
        const recipients = recipient !== undefined ? [recipient] : await this.queuedRecipients();
        for (const each of recipients) this.wake(each);
        await Promise.allSettled(recipients.map(each => this.lanes.get(each)?.done));
    }

    /**
     * Those of `recipients` that have entries queued or a drain running: whatever is sent to them now must go through
     * the outbox, behind those entries. Complete from the first write of this process on (it runs the recovery here).
     */
    async queuedAmong(recipients: readonly string[]): Promise<string[]> {
        if (this.nextSequence === undefined) await this.write(async () => undefined);
        return recipients.filter(recipient => this.queuedFor.has(recipient));
    }

    /** Drops a queued entry (e.g. the recipient pulled the payload itself). */
    async cancel(id: string, kind: string, recipient: string): Promise<void> {
        await this.database.query(OutboxEntry).filter({ id: entryId(id, kind, recipient) }).deleteMany();
    }

    /** Resolves when no delivery is running (for a clean close). */
    async idle(): Promise<void> {
        while (this.lanes.size) await Promise.allSettled([...this.lanes.values()].map(lane => lane.done));
    }

    async pending(recipient?: string): Promise<OutboxEntry[]> {
        return this.database.query(OutboxEntry).filter(recipient !== undefined ? { state: 'queued', recipient } : { state: 'queued' }).orderBy('sequence').find();
    }

    /** A transaction that may queue entries; the first of this process runs the recovery passes in it, too. */
    protected async write(work: (session: DatabaseSession<DatabaseAdapter>) => Promise<void>): Promise<void> {
        let preparedHere = false;
        await this.database.write(async session => {
            if (this.nextSequence === undefined) {
                preparedHere = true;
                await this.prepare(session);
            }
            await work(session);
        }).catch(error => {
            // What the recovery queued was rolled back with the rest: the next write recovers again.
            if (preparedHere) this.nextSequence = undefined;
            throw error;
        });
    }

    /** Learns where the sequence goes on, and queues what the recovery passes find without an entry. */
    protected async prepare(session: DatabaseSession<DatabaseAdapter>): Promise<void> {
        const last = await session.query(OutboxEntry).orderBy('sequence', 'desc').findOneOrUndefined();
        this.nextSequence = last ? last.sequence + 1 : 0;
        for (const recipient of await session.query(OutboxEntry).filter({ state: 'queued' }).findField('recipient')) this.queuedFor.add(recipient);
        const found: OutboxEntry[] = [];
        for (const recovery of this.recoveries) found.push(...(await recovery(session)).map(toEntry));
        for (let i = 0; i < found.length; i += 500) {
            const slice = found.slice(i, i + 500);
            const existing = new Set((await session.query(OutboxEntry).filter({ id: { $in: slice.map(entry => entry.id) } }).find()).map(entry => entry.id));
            for (const entry of slice) {
                if (existing.has(entry.id)) continue;
                entry.sequence = this.nextSequence++;
                session.add(entry);
                this.queuedFor.add(entry.recipient);
            }
        }
    }

    protected async queuedRecipients(): Promise<string[]> {
        return [...new Set(await this.database.query(OutboxEntry).filter({ state: 'queued' }).findField('recipient'))];
    }

    /** Starts the recipient's drain, or tells the running one to look again before it stops. */
    protected wake(recipient: string): void {
        const running = this.lanes.get(recipient);
        if (running) {
            running.again = true;
            return;
        }
        const lane: Lane = { again: false, done: Promise.resolve() };
        this.lanes.set(recipient, lane);
        lane.done = this.drain(recipient, lane);
    }

    protected async drain(recipient: string, lane: Lane): Promise<void> {
        let drained = false;
        try {
            let after = -1;
            let size = 1;
            for (;;) {
                const batch = await this.database.query(OutboxEntry)
                    .filter({ recipient, state: 'queued', sequence: { $gt: after } })
                    .orderBy('sequence').limit(size).find();
                let reachable = true;
                for (const entry of batch) {
                    after = entry.sequence;
                    if (!await this.attempt(entry)) {
                        reachable = false;
                        break;
                    }
                }
                if (reachable && batch.length === size) {
                    size = DRAIN_BATCH;
                    continue;
                }
                if (!lane.again) {
                    drained = reachable;
                    break;
                }
                lane.again = false;
                // Unreachable a moment ago: what was queued since gets one more try, from the head of the queue.
                if (!reachable) {
                    after = -1;
                    size = 1;
                }
            }
        } catch {
            // The database failed (e.g. it is closing): the entries stay queued for the next flush.
        }
        // From the last check of `again` to here nothing awaits: whatever is queued from now on starts a new drain.
        this.lanes.delete(recipient);
        if (drained) this.queuedFor.delete(recipient);
        const waiters = this.waiters.get(recipient);
        this.waiters.delete(recipient);
        for (const waiter of waiters?.values() ?? []) waiter.resolve('queued');
    }

    /** @returns false when the recipient is not reachable now (the entry stays queued). */
    protected async attempt(entry: OutboxEntry): Promise<boolean> {
        const handler = this.handlers.get(entry.kind);
        if (!handler) return false;
        const payload = JSON.parse(entry.payload);
        entry.attempts++;
        try {
            await handler(entry.recipient, payload);
        } catch (error) {
            entry.lastError = error instanceof Error ? error.message : String(error);
            if (isTransient(error)) {
                await this.database.persist(entry);
                return false;
            }
            entry.state = 'failed';
            await this.database.persist(entry);
            this.settle(entry, waiter => waiter.reject(error));
            return true;
        }
        await this.database.remove(entry);
        this.settle(entry, waiter => waiter.resolve('delivered'));
        if (entry.attempts > 1) this.delivered$.next({ kind: entry.kind, recipient: entry.recipient, payload });
        return true;
    }

    protected settle(entry: OutboxEntry, how: (waiter: Waiter) => void): void {
        const waiters = this.waiters.get(entry.recipient);
        const waiter = waiters?.get(entry.id);
        if (!waiter) return;
        waiters!.delete(entry.id);
        how(waiter);
    }

    protected waitersOf(recipient: string): Map<string, Waiter> {
        let waiters = this.waiters.get(recipient);
        if (!waiters) this.waiters.set(recipient, waiters = new Map());
        return waiters;
    }
}

function entryId(id: string, kind: string, recipient: string): string {
    return id + ':' + kind + ':' + recipient;
}

function toEntry(item: OutboxItem): OutboxEntry {
    return new OutboxEntry(entryId(item.id ?? crypto.randomUUID(), item.kind, item.recipient), item.recipient, item.kind, JSON.stringify(item.payload));
}
