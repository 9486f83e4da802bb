import { Subject } from 'rxjs';
import { ChatEntry, DeliveryStatus, MessagePath } from '@switchboard/protocol';
import { ChatRecord } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';
import { key, rank, toEntry } from './chat-records';
import { SenderQuota, textBytes } from './sender-quota';

/** Ids per statement when statuses change: a `markRead` of many ids runs as several bounded queries. */
const STATUS_BATCH = 500;

/** The stored chat records' statuses: read one, move many forward, and report each change in `updates$`. */
export class ChatStatuses {
    constructor(
        protected database: PeerDatabase,
        protected updates$: Subject<ChatEntry>,
        /** Unread messages each sender has stored here: a message read frees its place. */
        protected unread: SenderQuota,
    ) {
    }

    async record(direction: 'in' | 'out', peerId: string, id: string): Promise<ChatRecord> {
        return this.database.query(ChatRecord).filter({ key: key(direction, peerId, id) }).findOne();
    }

    /**
     * Moves messages forward only (sending → queued → delivered → read, or to failed), and records the `path` of those
     * still on their way; returns the ids that changed.
     */
    async set(direction: 'in' | 'out', peerId: string, ids: string[], status: DeliveryStatus, path?: MessagePath): Promise<string[]> {
        const unique = [...new Set(ids)];
        const changedIds: string[] = [];
        for (let start = 0; start < unique.length; start += STATUS_BATCH) {
            const batch = unique.slice(start, start + STATUS_BATCH);
            // Read and written in one serialized transaction: a "delivered" that read the record before a concurrent
            // "read" was written would otherwise write over it, and the status would go backwards.
            const changed = await this.database.write(async session => {
                const records = await session.query(ChatRecord).filter({ key: { $in: batch.map(id => key(direction, peerId, id)) } }).find();
                const moved = records.filter(record => status === 'failed'
                    // `failed` ends only a message still on its way.
                    ? ['sending', 'queued'].includes(record.status)
                    : rank[status] > rank[record.status] || (path !== undefined && path !== record.path && rank[status] === rank[record.status]));
                for (const record of moved) {
                    record.status = status;
                    if (path) record.path = path;
                }
                session.add(...moved);
                return moved;
            });
            if (!changed.length) continue;
            if (direction === 'in' && status === 'read') this.unread.release(peerId, changed.length, changed.reduce((sum, record) => sum + textBytes(record.text), 0));
            for (const record of changed) this.updates$.next(toEntry(record));
            changedIds.push(...changed.map(record => record.id));
        }
        return changedIds;
    }
}
