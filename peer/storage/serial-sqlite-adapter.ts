// Deepkit's SQLite error mapping can loop for ever (see the module).
import '@switchboard/protocol/internal/sqlite';
import { DatabaseEntityRegistry, MigrateOptions } from '@deepkit/orm';
import { DatabaseComparator, DatabaseModel, MigrationStateEntity } from '@deepkit/sql';
import { SQLiteConnection, SQLiteConnectionPool, SQLiteDatabaseAdapter, SQLiteDatabaseTransaction } from '@deepkit/sqlite';
import { ReflectionClass } from '@deepkit/type';
import { CachedStatementConnection } from './cached-statements';

/**
 * One SQLite connection, handed to one user at a time, strictly in turn; a transaction keeps it until it ends.
 *
 * Why not Deepkit's pool: with several connections to a file, a write on one while a transaction is open on another
 * meets SQLITE_BUSY, and better-sqlite3 waits for the lock synchronously — the event loop stops, so the transaction
 * holding the lock can never finish. With one connection (as Deepkit does for `:memory:`), its pool marks the
 * connection free before the queued caller takes it, so a third caller can slip in and share it; inside an open
 * transaction that caller's release is ignored and the pool counts a connection that is never returned.
 *
 * Reaches into Deepkit's SQL pool (protected `activeConnections`, `createConnection`, and the transaction protocol of
 * `getConnection`), a touchpoint listed in shared/deepkit/README.md; tests/peer/storage-transactions.test.ts fails when
 * that changes.
 */
export class SerialConnectionPool extends SQLiteConnectionPool {
    protected connection?: SQLiteConnection;
    protected held = false;
    protected turns: ((connection: SQLiteConnection) => void)[] = [];
    protected idleWaiters: (() => void)[] = [];

    /** Resolves once nobody holds or waits for the connection (Deepkit's disconnect throws while one is held). */
    idle(): Promise<void> {
        if (!this.held) return Promise.resolve();
        return new Promise(resolve => this.idleWaiters.push(resolve));
    }

    override async getConnection(transaction?: SQLiteDatabaseTransaction): Promise<SQLiteConnection> {
        if (transaction?.connection) return transaction.connection;
        let connection: SQLiteConnection;
        if (this.held) {
            connection = await new Promise<SQLiteConnection>(resolve => this.turns.push(resolve));
        } else {
            this.held = true;
            connection = this.connection ??= this.createConnection();
        }
        connection.released = false;
        this.activeConnections = 1;
        connection.transaction = transaction;
        if (transaction) {
            transaction.connection = connection;
            try {
                await transaction.begin();
            } catch (error) {
                transaction.ended = true;
                this.release(connection);
                throw new Error('Could not start transaction: ' + error);
            }
        }
        return connection;
    }

    override release(connection: SQLiteConnection): void {
        // A transaction's connection is released by its commit or rollback, not by the queries inside it.
        if (connection.transaction && !connection.transaction.ended) return;
        const next = this.turns.shift();
        if (next) return next(connection);
        this.held = false;
        connection.released = true;
        this.activeConnections = 0;
        for (const resolve of this.idleWaiters.splice(0)) resolve();
    }

    /** Ours prepares each SQL text once (see CachedStatementConnection). */
    protected override createConnection(transaction?: SQLiteDatabaseTransaction): SQLiteConnection {
        return new CachedStatementConnection(this, this.dbPath, this.logger, transaction, this.stopwatch);
    }

    override close(): void {
        this.connection?.db.close();
        this.connection = undefined;
    }
}

/** Deepkit's SQLite adapter on a `SerialConnectionPool`. */
export class SerialSQLiteAdapter extends SQLiteDatabaseAdapter {
    override readonly connectionPool: SerialConnectionPool = new SerialConnectionPool(this.sqlitePath, this.logger);

    /**
     * Migrates in one step: one comparison of the schema with the entities, and its DDL run as one transaction.
     * Deepkit's `migrate` compares the whole schema once per entity and runs each statement on its own (a peer's 12+
     * tables: ~25 statements and a dozen comparisons on every start).
     */
    override async migrate(options: MigrateOptions, entityRegistry: DatabaseEntityRegistry): Promise<void> {
        const connection = await this.connectionPool.getConnection();
        try {
            // A new database (`:memory:`, the default, or a new file) of entities migrated before in this process gets
            // the same DDL: reused, without building, parsing and comparing the schemas again (most of a join's SQL CPU).
            const key = this.getSchemaName() + '|' + entityKey(entityRegistry.forMigration());
            const known = emptyDatabaseDdl.get(key);
            const empty = !connection.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").get();
            if (known && empty) return await runDdl(connection, known);
            const wanted = new DatabaseModel([], this.getName());
            wanted.schemaName = this.getSchemaName();
            this.platform.createTables(entityRegistry, wanted);
            const present = new DatabaseModel([], this.getName());
            present.schemaName = this.getSchemaName();
            await new this.platform.schemaParserType(connection, this.platform).parse(present);
            present.removeUnknownTables(wanted);
            present.removeTable(ReflectionClass.from(MigrationStateEntity).getCollectionName());
            const diff = DatabaseComparator.computeDiff(present, wanted);
            const statements = diff ? this.platform.getModifyDatabaseDDL(diff, options) : [];
            if (empty && emptyDatabaseDdl.size < MAX_REMEMBERED_SCHEMAS) emptyDatabaseDdl.set(key, statements);
            await runDdl(connection, statements);
        } catch (error) {
            if (connection.db.inTransaction) connection.db.exec('ROLLBACK');
            throw error;
        } finally {
            connection.release();
        }
    }
}

/** DDL that creates a set of entities' tables in an empty database, by schema and entity set (see migrate). */
const emptyDatabaseDdl = new Map<string, string[]>();
/** Entity sets remembered at most (a process has a few: the SDK's tables plus its features'). */
const MAX_REMEMBERED_SCHEMAS = 100;
const classIds = new WeakMap<object, number>();
let nextClassId = 0;

/** The identity of a set of entity classes (not their names: two classes may share one). */
function entityKey(entities: ReflectionClass<any>[]): string {
    return entities.map(entity => {
        const type = entity.getClassType();
        let id = classIds.get(type);
        if (id === undefined) classIds.set(type, id = nextClassId++);
        return id;
    }).sort((a, b) => a - b).join(',');
}

async function runDdl(connection: SQLiteConnection, statements: string[]): Promise<void> {
    if (!statements.length) return;
    await connection.exec(['BEGIN', ...statements, 'COMMIT'].map(sql => sql.replace(/;\s*$/, '')).join(';\n'));
}
