import { ExchangePresence } from '../exchange/peer-exchange';
import { DirectoryEntry } from './directory-entry';

/**
 * The directory's presence view: what presence has reported, per peer ID. Fed by the directory's watch alone (never
 * by this broker's own writes, unlike the routing view), so every broker reports the same events in the same order.
 */
export class DirectoryPresence {
    protected watched = new Map<string, DirectoryEntry>();

    /** `closed`: the directory is closed, and reports nothing more. */
    constructor(protected report: (event: ExchangePresence) => void, protected closed: () => boolean) {
    }

    /** @param resyncing a rebuilt watch is showing its snapshot: unchanged entries shown again are not news */
    put(entry: DirectoryEntry, at: Date, resyncing: boolean): void {
        const previous = this.watched.get(entry.peerId);
        this.watched.set(entry.peerId, entry);
        if (!previous) return this.emit('online', entry, at);
        if (previous.connectionId !== entry.connectionId) {
            this.emit('offline', previous, at);
            return this.emit('online', entry, at);
        }
        if (previous.revision !== entry.revision && !(resyncing && sameList(previous.capabilities, entry.capabilities))) this.emit('capabilities', entry, at);
    }

    delete(peerId: string, at: Date): void {
        const previous = this.watched.get(peerId);
        if (!previous) return;
        this.watched.delete(peerId);
        this.emit('offline', previous, at);
    }

    /** A rebuilt watch's snapshot is complete: whatever it did not show is gone (the store was emptied, or entries were reaped). */
    sweep(seen: Set<string>, now: Date): void {
        for (const [peerId, previous] of [...this.watched]) {
            if (seen.has(peerId)) continue;
            this.watched.delete(peerId);
            this.emit('offline', previous, now);
        }
    }

    protected emit(kind: ExchangePresence['kind'], entry: DirectoryEntry, at: Date): void {
        if (this.closed()) return;
        this.report({ kind, peerId: entry.peerId, capabilities: entry.capabilities, at });
    }
}

function sameList(a: string[], b: string[]): boolean {
    return a.length === b.length && a.every((item, index) => item === b[index]);
}
