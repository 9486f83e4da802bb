import { AuditEntry } from './registry/audit-log';
import { AuditKind } from './registry/entities';

/** Distinct refusals (kind, reason, target) one connection aggregates at once; more share one overflow row. */
const MAX_KEYS = 64;

interface Window {
    kind: AuditKind;
    entry: AuditEntry;
    repeats: number;
}

/**
 * Audit rows for one connection's refusals, so that a flood of refused frames does not become a flood of audit
 * writes: the first refusal of a kind (kind, reason, target) is written at once; repeats within the next
 * `windowMs` are summed into one row at the window's end (`RATE_LIMITED (+4211 more in 1000 ms)`). A connection
 * that is refused now and then still gets one row per refusal.
 */
export class RefusalAudit {
    /** Made at the first refusal and dropped at each flush: most connections are never refused (about 0.4 KiB each). */
    protected windows?: Map<string, Window>;
    protected timer?: ReturnType<typeof setTimeout>;

    constructor(protected write: (kind: AuditKind, entry: AuditEntry) => void, protected windowMs = 1000) {
    }

    record(kind: AuditKind, entry: AuditEntry): void {
        let key = kind + '\n' + (entry.reason ?? '') + '\n' + (entry.target ?? '');
        const windows = this.windows ??= new Map();
        if (!windows.has(key) && windows.size >= MAX_KEYS) key = 'overflow';
        const window = windows.get(key);
        if (window) {
            window.repeats++;
            return;
        }
        this.write(kind, entry);
        windows.set(key, key === 'overflow' ? { kind: 'denied', entry: { reason: 'various refusals' }, repeats: 0 } : { kind, entry, repeats: 0 });
        if (!this.timer) {
            this.timer = setTimeout(() => this.flush(), this.windowMs);
            // An idle broker process must be able to exit while a window is open.
            this.timer.unref?.();
        }
    }

    /** Writes the repeat counts of the open windows. Called at the window's end and when the connection closes. */
    flush(): void {
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        const windows = this.windows;
        this.windows = undefined;
        for (const { kind, entry, repeats } of windows?.values() ?? []) {
            if (repeats) this.write(kind, { ...entry, reason: `${entry.reason} (+${repeats} more in ${this.windowMs} ms)` });
        }
    }
}
