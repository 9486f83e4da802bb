import { ensureDatabaseError } from '@deepkit/orm';
import { SQLiteConnection, SQLiteStatement } from '@deepkit/sqlite';
import type { Statement } from 'better-sqlite3';

/**
 * Statements kept per connection. Deepkit's ORM builds the same SQL text for the same query shape (values are
 * parameters), so a peer's few dozen shapes fit; the bound only stops a stream of distinct texts (`$in` lists of
 * every length) from growing it for ever.
 */
export const CACHED_STATEMENTS_MAX = 500;

/**
 * A SQLite connection that prepares each SQL text once. Deepkit's connection prepares every statement afresh on every
 * execution (prepares = executions: 300 joins ran ~31,000 prepares); compiling the SQL is most of a small query's
 * cost. A prepared statement runs synchronously in better-sqlite3, so one statement is never used by two queries at
 * once, and SQLite re-prepares it by itself after a schema change.
 *
 * Reaches into Deepkit's connection (`db`, `changes`, `logger`, `stopwatch`), a touchpoint listed in
 * shared/deepkit/README.md; tests/peer/storage-statements.test.ts fails when that changes.
 */
export class CachedStatementConnection extends SQLiteConnection {
    protected statements: Map<string, Statement> = new Map();

    /** The connection's statement for `sql`, prepared on first use; least recently used ones go past the bound. */
    statement(sql: string): Statement {
        let statement = this.statements.get(sql);
        if (statement) {
            // Re-inserted: the map's order is the order of last use.
            this.statements.delete(sql);
        } else {
            statement = this.db.prepare(sql);
            if (this.statements.size >= CACHED_STATEMENTS_MAX) this.statements.delete(this.statements.keys().next().value!);
        }
        this.statements.set(sql, statement);
        return statement;
    }

    /** How many statements are cached (for tests and the bench). */
    get cachedStatements(): number {
        return this.statements.size;
    }

    override async prepare(sql: string): Promise<SQLiteStatement> {
        return new SQLiteStatement(this.logger, sql, this.statement(sql), this.stopwatch);
    }

    override async run(sql: string, params: unknown[] = []): Promise<void> {
        try {
            this.changes = this.statement(sql).run(...params).changes;
        } catch (error) {
            throw ensureDatabaseError(error as Error);
        }
    }
}
