import { DatabaseAdapter, DatabaseSession } from '@deepkit/orm';
import { Outbox, OutboxItem, Queued } from '../outbox';

/**
 * Keeps the order of what goes to one recipient while a message to it travels outside the outbox (a group message
 * sent by multicast): what is queued for that recipient meanwhile waits here until the copy's fate is known (and, if
 * it missed, its outbox entry is queued), so it arrives after.
 */
export class RecipientHolds {
    /** Recipients with a hold on, and the promise their next entries wait for. */
    protected holds = new Map<string, Promise<unknown>>();

    constructor(protected outbox: Outbox) {
    }

    /** Whether what is queued for `recipient` now would wait. */
    held(recipient: string): boolean {
        return this.holds.has(recipient);
    }

    /**
     * Queues through the outbox; behind a hold on the recipient, if there is one. Calls for one recipient are queued
     * in the order they were made.
     */
    async enqueue(item: OutboxItem, alongside?: (session: DatabaseSession<DatabaseAdapter>) => unknown): Promise<Queued> {
        const hold = this.holds.get(item.recipient);
        if (!hold) return this.outbox.enqueue(item, alongside);
        const queued = hold.then(() => this.outbox.enqueue(item, alongside));
        this.hold(item.recipient, queued);
        return queued;
    }

    /** Makes what is queued for `recipient` from now on wait for `until`. */
    hold(recipient: string, until: Promise<unknown>): void {
        const settled = until.then(() => undefined, () => undefined);
        this.holds.set(recipient, settled);
        void settled.then(() => {  // `settled` never rejects
            if (this.holds.get(recipient) === settled) this.holds.delete(recipient);
        });
    }
}
