import { ClassType } from '@deepkit/core';
import { Database, DatabaseAdapter, DatabaseSession, Query } from '@deepkit/orm';
import { mkdirSync } from 'fs';
import { dirname } from 'path';
import type { SerialSQLiteAdapter } from './serial-sqlite-adapter';
import { listensForChanges } from './web-storage-adapter';
import { ChatGroupRecord, ChatRecord, CollabDocRecord, CollabUpdate, DownloadRecord, HeldPayload, KnownPeer, OutboxEntry, PeerSetting, ReceiptRecord, ReceivedPayload, SharedFile } from './entities';

const coreEntities: ClassType[] = [PeerSetting, KnownPeer, OutboxEntry, ChatRecord, ChatGroupRecord, HeldPayload, ReceivedPayload, ReceiptRecord, SharedFile, DownloadRecord, CollabUpdate, CollabDocRecord];

/**
 * A peer's own storage: settings, outbox, caches, and what the built-in controllers keep. A SQLite file (or
 * `:memory:`) in Node; any Deepkit ORM adapter elsewhere (a browser peer uses WebStorageAdapter).
 */
export class PeerDatabase extends Database {
    /** The last write started with `write()`: the next one waits for it. */
    protected lastWrite: Promise<unknown> = Promise.resolve();

    constructor(storage: string | DatabaseAdapter, entities: ClassType[] = []) {
        if (typeof storage === 'string' && storage !== ':memory:') mkdirSync(dirname(storage), { recursive: true });
        // One connection taken in turn: transactions on a file must never wait for a lock (see SerialSQLiteAdapter).
        super(typeof storage === 'string' ? sqliteAdapter(storage) : storage, [...coreEntities, ...entities]);
        this.name = 'peer';
        const adapter = this.adapter;
        if (listensForChanges(adapter)) {
            for (const written of [DatabaseSession.onInsertPost, DatabaseSession.onUpdatePost, DatabaseSession.onDeletePost, Query.onPatchPost, Query.onDeletePost]) {
                this.listen(written, () => adapter.changed());
            }
        }
    }

    /**
     * Runs `work` in one transaction, after every transaction started before it with `write()`. Everything `work`
     * adds to the session is committed together or not at all, and transactions commit in the order they were
     * started (the outbox relies on it: entries commit in the order of their sequence). Inside `work`, read through
     * the session: with one connection, a query outside it waits for the transaction, which waits for `work`.
     */
    write<T>(work: (session: DatabaseSession<DatabaseAdapter>) => Promise<T>): Promise<T> {
        const run = this.lastWrite.then(() => this.transaction(work));
        this.lastWrite = run.catch(() => undefined);
        return run;
    }

    /**
     * Closes the database once the writes started before and any query in progress are done: a peer closing while
     * a chat send or a delivery still runs must not fail with Deepkit's "still active connections".
     */
    async close(): Promise<void> {
        await this.lastWrite;
        const pool = (this.adapter as Partial<SerialSQLiteAdapter>).connectionPool;
        if (pool && typeof pool.idle === 'function') await pool.idle();
        this.disconnect();
    }

    async getSetting(key: string): Promise<string | undefined> {
        return (await this.query(PeerSetting).filter({ key }).findOneOrUndefined())?.value;
    }

    async setSetting(key: string, value: string): Promise<void> {
        const existing = await this.query(PeerSetting).filter({ key }).findOneOrUndefined();
        if (existing) {
            existing.value = value;
            await this.persist(existing);
        } else {
            await this.persist(new PeerSetting(key, value));
        }
    }
}

/**
 * Loaded only when a peer stores in SQLite: the adapter's classes extend @deepkit/sqlite's at module load, and a
 * browser bundle has only a stub of that package (a browser peer passes a Web Storage adapter instead).
 */
function sqliteAdapter(path: string): SerialSQLiteAdapter {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { SerialSQLiteAdapter } = require('./serial-sqlite-adapter') as typeof import('./serial-sqlite-adapter');
    return new SerialSQLiteAdapter(path);
}
