import { Observable, Subject } from 'rxjs';
import { AuditEvent, AuditKind } from './entities';
import { RegistryDatabase } from './database';
import { WriteBehind } from './write-behind';
import { BrokerConfig } from '../config';
import { PeerExchange } from '../exchange/peer-exchange';

export interface AuditEntry {
    peerId?: string;
    target?: string;
    controller?: string;
    action?: string;
    reason?: string;
    session?: string;
    connectionId?: string;
}

export interface AuditQuery {
    peerId?: string;
    kind?: AuditKind;
    limit?: number;
}

/** Decisions kept in memory for the dashboard's first view; the full trail is in SQLite. */
const RECENT = 50;
/** Routed calls are summed per caller, target and action over this interval. */
const CALL_INTERVAL_MS = 1000;
/** Distinct call aggregates held at once; at this many they are written early. */
const MAX_CALL_AGGREGATES = 10_000;

interface CallAggregate {
    entry: AuditEntry;
    count: number;
    firstAt: number;
    lastAt: number;
}

/** The audit trail: every registration, denial, routed call and disconnect, in the order the broker decided them. */
export class AuditLog {
    protected readonly recordedSubject = new Subject<AuditEvent>();
    /** Each decision as it is made (before it reaches SQLite). */
    readonly recorded: Observable<AuditEvent> = this.recordedSubject.asObservable();
    protected readonly recentEvents: AuditEvent[] = [];

    protected calls = new Map<string, CallAggregate>();
    protected callTimer?: ReturnType<typeof setTimeout>;

    constructor(
        protected database: RegistryDatabase,
        protected writer: WriteBehind,
        protected config: BrokerConfig,
        protected exchange: PeerExchange,
    ) {
    }

    /**
     * A routed peer call. Written as the `auditCalls` setting says: aggregated (default), each, or not at all. An
     * ORM entity per routed call costs more than routing the call; an aggregate row costs nothing per call.
     */
    recordCall(entry: AuditEntry): void {
        const mode = this.config.auditCalls;
        if (mode === 'off') return;
        if (mode === 'each') return this.record('call', entry);
        const key = (entry.peerId ?? '') + '\n' + (entry.session ?? '') + '\n' + (entry.target ?? '') + '\n' + (entry.controller ?? '') + '\n' + (entry.action ?? '') + '\n' + (entry.reason ?? '');
        const now = Date.now();
        const aggregate = this.calls.get(key);
        if (aggregate) {
            aggregate.count++;
            aggregate.lastAt = now;
            return;
        }
        if (this.calls.size >= MAX_CALL_AGGREGATES) this.flushCalls();
        this.calls.set(key, { entry, count: 1, firstAt: now, lastAt: now });
        if (!this.callTimer) {
            this.callTimer = setTimeout(() => this.flushCalls(), CALL_INTERVAL_MS);
            this.callTimer.unref?.();
        }
    }

    /** Turns the call aggregates of the current interval into audit rows. Called on its timer, before queries, at stop. */
    flushCalls(): void {
        if (this.callTimer) clearTimeout(this.callTimer);
        this.callTimer = undefined;
        const aggregates = [...this.calls.values()];
        this.calls.clear();
        for (const { entry, count, firstAt, lastAt } of aggregates) {
            const event = this.event('call', entry);
            event.at = new Date(firstAt);
            event.count = count;
            if (count > 1) event.lastAt = new Date(lastAt);
            this.publish(event);
        }
    }

    record(kind: AuditKind, entry: AuditEntry): void {
        this.publish(this.event(kind, entry));
    }

    protected event(kind: AuditKind, entry: AuditEntry): AuditEvent {
        const event = new AuditEvent(kind);
        Object.assign(event, entry);
        event.brokerId = this.exchange.brokerId;
        return event;
    }

    protected publish(event: AuditEvent): void {
        this.writer.schedule(event);
        this.exchange.recordAudit?.(event);
        this.recentEvents.push(event);
        if (this.recentEvents.length > RECENT) this.recentEvents.shift();
        if (this.recordedSubject.observed) this.recordedSubject.next(event);
    }

    /** The last few decisions, newest last, without a query. */
    recent(): AuditEvent[] {
        return [...this.recentEvents];
    }

    /** Newest last. Waits for pending writes first, so the caller sees everything decided before it asked. */
    async query(query: AuditQuery = {}): Promise<AuditEvent[]> {
        this.flushCalls();
        await this.writer.flush();
        let select = this.database.query(AuditEvent);
        if (query.peerId) select = select.filter({ $or: [{ peerId: query.peerId }, { target: query.peerId }] });
        if (query.kind) select = select.filter({ kind: query.kind });
        // By time first: an aggregated call row is written at the end of its interval but dated at its first call.
        const newestFirst = await select.orderBy('at', 'desc').orderBy('id', 'desc').limit(query.limit ?? 100).find();
        return newestFirst.reverse();
    }
}
