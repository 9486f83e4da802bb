import { ClassType } from '@deepkit/core';
import { Database, DatabaseAdapter, DatabaseSession, MemoryDatabaseAdapter, Query } from '@deepkit/orm';
import { mkdirSync } from 'fs';
import { dirname } from 'path';
import type { SerialSQLiteAdapter } from './serial-sqlite-adapter';
import { listensForChanges } from './web-storage-adapter';
import { ChatGroupRecord, ChatRecord, CollabDocRecord, CollabUpdate, DownloadRecord, HeldPayload, KnownPeer, OutboxEntry, PeerSetting, ReceiptRecord, ReceivedPayload, SharedFile } from './entities';

/** Every peer's: settings (the reclaim secret, keys) and the outbox. */
const coreEntities: ClassType[] = [PeerSetting, OutboxEntry];
/** The built-in features' tables (chat, discovery, relay, files, collab): what a database gets when not told otherwise. */
const builtinEntities: ClassType[] = [KnownPeer, ChatRecord, ChatGroupRecord, HeldPayload, ReceivedPayload, ReceiptRecord, SharedFile, DownloadRecord, CollabUpdate, CollabDocRecord];

/**
 * A peer's own storage: settings, outbox, caches, and what the built-in controllers keep. A SQLite file (or
 * `:memory:`) in Node; any Deepkit ORM adapter elsewhere (a browser peer uses WebStorageAdapter). In a browser,
 * `:memory:` (the default) is Deepkit's in-memory adapter.
 */
export class PeerDatabase extends Database {
    /** The last write started with `write()`: the next one waits for it. */
    protected lastWrite: Promise<unknown> = Promise.resolve();

    /** `entities`: the features' tables besides the core ones; by default the built-in features'. */
    constructor(storage: string | DatabaseAdapter, entities: ClassType[] = builtinEntities) {
        super(typeof storage === 'string' ? adapterFor(storage) : storage, [...new Set([...coreEntities, ...entities])]);
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

/** Node, not a browser (a bundler's `process` shim has no `versions.node`). */
function runsInNode(): boolean {
    return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

/**
 * The adapter for a storage given by name. In Node: SQLite, one connection taken in turn (transactions on a file must
 * never wait for a lock, see SerialSQLiteAdapter). In a browser there is no SQLite: `:memory:` is Deepkit's in-memory
 * adapter, and a file name is an error that says what to pass instead.
 */
function adapterFor(storage: string): DatabaseAdapter {
    if (!runsInNode()) {
        if (storage === ':memory:') return new MemoryDatabaseAdapter();
        throw new Error(`Peer storage "${storage}": a SQLite file needs Node. In a browser, leave storage out (in memory) or pass storage: new WebStorageAdapter('my-app', sessionStorage) (import { WebStorageAdapter } from '@switchboard/peer').`);
    }
    if (storage !== ':memory:') mkdirSync(dirname(storage), { recursive: true });
    return sqliteAdapter(storage);
}

/**
 * Loaded only when a peer stores in SQLite: the adapter's classes extend @deepkit/sqlite's at module load, and a
 * browser bundle has only a stub of that package (the package's `browser` field leaves it out).
 */
function sqliteAdapter(path: string): SerialSQLiteAdapter {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { SerialSQLiteAdapter } = require('./serial-sqlite-adapter') as typeof import('./serial-sqlite-adapter');
    return new SerialSQLiteAdapter(path);
}
