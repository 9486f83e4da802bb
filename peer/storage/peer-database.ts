import { ClassType } from '@deepkit/core';
import { Database, DatabaseAdapter, DatabaseSession, Query } from '@deepkit/orm';
import { SQLiteDatabaseAdapter } from '@deepkit/sqlite';
import { mkdirSync } from 'fs';
import { dirname } from 'path';
import { listensForChanges } from './web-storage-adapter';
import { ChatGroupRecord, ChatRecord, CollabDocRecord, CollabUpdate, DownloadRecord, HeldPayload, KnownPeer, OutboxEntry, PeerSetting, ReceivedPayload, SharedFile } from './entities';

const coreEntities: ClassType[] = [PeerSetting, KnownPeer, OutboxEntry, ChatRecord, ChatGroupRecord, HeldPayload, ReceivedPayload, SharedFile, DownloadRecord, CollabUpdate, CollabDocRecord];

/**
 * A peer's own storage: settings, outbox, caches, and what the built-in controllers keep. A SQLite file (or
 * `:memory:`) in Node; any Deepkit ORM adapter elsewhere (a browser peer uses WebStorageAdapter).
 */
export class PeerDatabase extends Database {
    constructor(storage: string | DatabaseAdapter, entities: ClassType[] = []) {
        if (typeof storage === 'string' && storage !== ':memory:') mkdirSync(dirname(storage), { recursive: true });
        super(typeof storage === 'string' ? new SQLiteDatabaseAdapter(storage) : storage, [...coreEntities, ...entities]);
        this.name = 'peer';
        const adapter = this.adapter;
        if (listensForChanges(adapter)) {
            for (const written of [DatabaseSession.onInsertPost, DatabaseSession.onUpdatePost, DatabaseSession.onDeletePost, Query.onPatchPost, Query.onDeletePost]) {
                this.listen(written, () => adapter.changed());
            }
        }
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
