import { DatabaseAdapter, DatabaseSession } from '@deepkit/orm';
import { ChatEntry, ChatMessage, DeliveryStatus } from '@switchboard/protocol';
import { OutboxItem } from '../outbox';
import { ChatRecord } from '../storage/entities';

/** The order statuses move in (only forward; `failed` ends a message still on its way). */
export const rank: Record<DeliveryStatus, number> = { failed: 0, sending: 1, queued: 2, delivered: 3, read: 4 };

/** A record's key: `in:` or `out:` + peer + message id (the same group message goes to several peers under one id). */
export function key(direction: 'in' | 'out', peerId: string, id: string): string {
    return `${direction}:${peerId}:${id}`;
}

export function toEntry(record: ChatRecord): ChatEntry {
    return new ChatEntry(record.id, record.peerId, record.direction, record.text, record.sentAt, record.status, record.groupId, record.path);
}

/**
 * Messages still `sending` with no outbox entry: what a crash of an older version left between writing the record
 * and its entry. The outbox queues them again (it skips those that have an entry).
 */
export async function strandedChats(session: DatabaseSession<DatabaseAdapter>): Promise<OutboxItem[]> {
    const records = await session.query(ChatRecord).filter({ direction: 'out', status: 'sending' }).orderBy('sentAt').find();
    return records.map(record => ({
        recipient: record.peerId,
        kind: 'chat',
        payload: new ChatMessage(record.id, record.text, record.sentAt, record.groupId),
        id: record.id,
    }));
}
