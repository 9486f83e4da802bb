import { UniqueConstraintFailure } from '@deepkit/orm';
import { SQLitePersistence, SQLiteQueryResolver } from '@deepkit/sqlite';

/**
 * Deepkit 1.0.19's SQLite adapter turns a failed query into a typed error by walking `error.cause` while each cause is
 * `instanceof Error` — and loops for ever on one that is not: an error from another realm (better-sqlite3's native
 * errors seen from jest's VM contexts), or a thrown non-Error. One failed query then blocks the process at 100 % CPU.
 * This walk is bounded and reads `message` from any object. Node-only (it loads @deepkit/sqlite); imported by the
 * broker's and the peer's SQLite databases. tests/deepkit/patches.test.ts fails loudly when Deepkit changes it.
 */
export function specificSQLiteError(error: Error): Error {
    let cause: unknown = error;
    for (let depth = 0; cause && depth < 16; depth++) {
        const message = (cause as { message?: unknown }).message;
        if (typeof message === 'string' && message.includes('UNIQUE constraint failed')) return new UniqueConstraintFailure(message, { cause: error });
        cause = (cause as { cause?: unknown }).cause;
    }
    return error;
}

for (const patched of [SQLitePersistence.prototype, SQLiteQueryResolver.prototype]) {
    if (typeof patched.handleSpecificError !== 'function') {
        throw new Error('@deepkit/sqlite changed: handleSpecificError is gone; review shared/deepkit/sqlite-patch.ts.');
    }
    patched.handleSpecificError = specificSQLiteError;
}
