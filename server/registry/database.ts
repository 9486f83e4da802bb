// Deepkit's SQLite error mapping can loop for ever (see the module).
import '@switchboard/protocol/internal/sqlite';
import { Database } from '@deepkit/orm';
import { SQLiteDatabaseAdapter } from '@deepkit/sqlite';
import { mkdirSync } from 'fs';
import { dirname } from 'path';
import { AuditEvent, PeerRecord, PeerToken } from './entities';

function openAdapter(path: string): SQLiteDatabaseAdapter {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    return new SQLiteDatabaseAdapter(path);
}

/** The broker's SQLite database: registry, audit trail and (unless configured elsewhere) tokens. */
export class RegistryDatabase extends Database {
    constructor(path: string) {
        super(openAdapter(path), [PeerRecord, AuditEvent, PeerToken]);
        this.name = 'registry';
    }
}

/** A separate token database, for operators who keep credentials apart from the registry. */
export class TokenDatabase extends Database {
    constructor(path: string) {
        super(openAdapter(path), [PeerToken]);
        this.name = 'tokens';
    }
}
