import { Database } from '@deepkit/orm';
import { LoggerInterface } from '@deepkit/logger';

/**
 * Collects entity writes and commits them together a few milliseconds later, in one transaction. Routing must not
 * wait for the disk: a peer call is acknowledged by the receiving peer, not by SQLite. `flush()` is awaited on
 * shutdown and before any query, so a reader always sees what happened before it asked.
 */
export class WriteBehind {
    protected pending = new Set<object>();
    protected timer?: ReturnType<typeof setTimeout>;
    protected flushing: Promise<void> = Promise.resolve();

    constructor(
        protected database: Database,
        protected logger: LoggerInterface,
        protected delayMs = 25,
    ) {
    }

    schedule(entity: object): void {
        this.pending.add(entity);
        if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.delayMs);
    }

    /** Commits everything scheduled so far; resolves when it is on disk. */
    flush(): Promise<void> {
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        const items = [...this.pending];
        this.pending.clear();
        this.flushing = this.flushing.then(async () => {
            if (!items.length) return;
            try {
                await this.database.persist(...items);
            } catch (error) {
                this.logger.error('Could not write registry/audit changes', error);
            }
        });
        return this.flushing;
    }
}
