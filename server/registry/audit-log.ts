import { Observable, Subject } from 'rxjs';
import { AuditEvent, AuditKind } from './entities';
import { RegistryDatabase } from './database';
import { WriteBehind } from './write-behind';

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

/** The audit trail: every registration, denial, routed call and disconnect, in the order the broker decided them. */
export class AuditLog {
    protected readonly recordedSubject = new Subject<AuditEvent>();
    /** Each decision as it is made (before it reaches SQLite). */
    readonly recorded: Observable<AuditEvent> = this.recordedSubject.asObservable();
    protected readonly recentEvents: AuditEvent[] = [];

    constructor(
        protected database: RegistryDatabase,
        protected writer: WriteBehind,
    ) {
    }

    record(kind: AuditKind, entry: AuditEntry): void {
        const event = new AuditEvent(kind);
        Object.assign(event, entry);
        this.writer.schedule(event);
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
        await this.writer.flush();
        let select = this.database.query(AuditEvent);
        if (query.peerId) select = select.filter({ $or: [{ peerId: query.peerId }, { target: query.peerId }] });
        if (query.kind) select = select.filter({ kind: query.kind });
        const newestFirst = await select.orderBy('id', 'desc').limit(query.limit ?? 100).find();
        return newestFirst.reverse();
    }
}
