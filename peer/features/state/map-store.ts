import * as Y from 'yjs';
import { PeerDatabase } from '../../storage/peer-database';
import { StateUpdateRecord } from './state-entities';
import { nextTurn } from '@switchboard/protocol/internal';

/** Rows of one map beyond this are folded into one (the whole state) at the next write. */
const COMPACT_AFTER = 200;
/**
 * Past this many updates in one turn, the whole state is stored instead of their merge: Yjs merges 10,000 small
 * updates in about 3 s, and encodes a 10,000-key map whole in about 60 ms.
 */
export const MERGE_AT_MOST = 64;

/**
 * A replicated map's storage: its Yjs updates as rows. Updates of one turn of the event loop are merged into one
 * row, so 5,000 writes in a loop cost one insert, not 5,000.
 */
export class MapStore {
    protected pending: Uint8Array[] = [];
    protected rows = 0;
    protected flushing: Promise<void> = Promise.resolve();
    protected scheduled = false;

    constructor(protected database: PeerDatabase, readonly name: string) {
    }

    /** Applies the stored state to `doc` (with `origin`, so it is neither stored again nor sent). */
    async load(doc: Y.Doc, origin: unknown): Promise<void> {
        const stored = await this.database.query(StateUpdateRecord).filter({ name: this.name }).orderBy('id').find();
        this.rows = stored.length;
        if (stored.length) Y.applyUpdate(doc, Y.mergeUpdates(stored.map(row => row.data)), origin);
    }

    /** Queues an update; it is in storage once `idle()` resolves. */
    append(update: Uint8Array, doc: Y.Doc): void {
        this.pending.push(update);
        if (this.scheduled) return;
        this.scheduled = true;
        this.flushing = this.flushing.then(() => new Promise<void>(resolve => nextTurn(resolve))).then(() => this.flush(doc));
    }

    /** Resolves when every update appended so far is stored. */
    async idle(): Promise<void> {
        do await this.flushing; while (this.scheduled);
    }

    protected async flush(doc: Y.Doc): Promise<void> {
        this.scheduled = false;
        const updates = this.pending.splice(0);
        if (!updates.length) return;
        try {
            if (this.rows + 1 > COMPACT_AFTER || updates.length > MERGE_AT_MOST) {
                // The whole state in one row replaces every row before it: the updates above are part of it.
                const state = Y.encodeStateAsUpdate(doc);
                await this.database.write(async session => {
                    await session.query(StateUpdateRecord).filter({ name: this.name }).deleteMany();
                    session.add(new StateUpdateRecord(this.name, state));
                });
                this.rows = 1;
            } else {
                const data = updates.length === 1 ? updates[0] : Y.mergeUpdates(updates);
                await this.database.write(async session => session.add(new StateUpdateRecord(this.name, data)));
                this.rows++;
            }
        } catch {
            // Storage closed under us (the peer is closing): the members still hold these writes.
        }
    }
}
