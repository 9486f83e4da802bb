import { SQLiteConnection } from '@deepkit/sqlite';

/** A second broker was started on a registry database that a running broker owns. */
export class DatabaseInUse extends Error {
    readonly code = 'DATABASE_IN_USE';

    constructor(public readonly database: string) {
        super(`Another broker is running on ${database}. Stop it first, or start this one with another --database (SWITCHBOARD_DATABASE).`);
    }
}

/** The part of better-sqlite3 the lock uses. */
interface LockConnection {
    exec(sql: string): void;
    close(): void;
}

/**
 * One broker per registry database, across processes. The broker holds an exclusive SQLite transaction on a small
 * side file (`<database>.broker-lock`) for as long as it runs. SQLite takes that as an OS file lock, which the
 * kernel drops when the process dies, even by kill -9: no stale lock to clean up and no PID that may have been
 * reused. The registry file itself is not locked, so `peers`, `audit` and `token:*` keep working while it runs.
 */
export class DatabaseLock {
    protected connection?: LockConnection;

    constructor(readonly database: string) {
    }

    /** Throws DatabaseInUse at once (no waiting) if another broker holds the lock. */
    acquire(): void {
        if (this.connection || this.database === ':memory:') return;
        // Deepkit's SQLite adapter exposes the better-sqlite3 constructor it uses: the same native build, no second copy.
        const connection: LockConnection = new SQLiteConnection.DatabaseConstructor(this.database + '.broker-lock', { timeout: 0 });
        try {
            connection.exec('BEGIN EXCLUSIVE');
        } catch (error) {
            connection.close();
            if ((error as { code?: string }).code === 'SQLITE_BUSY') throw new DatabaseInUse(this.database);
            throw error;
        }
        this.connection = connection;
    }

    release(): void {
        this.connection?.close();
        this.connection = undefined;
    }
}
