import { ClassType } from '@deepkit/core';
import { Database } from '@deepkit/orm';
import { SQLiteDatabaseAdapter } from '@deepkit/sqlite';
import { mkdirSync } from 'fs';
import { dirname } from 'path';
import { ChatGroupRecord, ChatRecord, CollabDocRecord, CollabUpdate, DownloadRecord, HeldPayload, KnownPeer, OutboxEntry, PeerSetting, ReceivedPayload, SharedFile } from './entities';

const coreEntities: ClassType[] = [PeerSetting, KnownPeer, OutboxEntry, ChatRecord, ChatGroupRecord, HeldPayload, ReceivedPayload, SharedFile, DownloadRecord, CollabUpdate, CollabDocRecord];

/** A peer's own SQLite file (or `:memory:`): settings, outbox, caches, and what the built-in controllers keep. */
export class PeerDatabase extends Database {
    constructor(path: string, entities: ClassType[] = []) {
        if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
        super(new SQLiteDatabaseAdapter(path), [...coreEntities, ...entities]);
        this.name = 'peer';
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
