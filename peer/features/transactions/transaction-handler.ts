/** What a handler is told about the transaction it takes part in. */
export interface TransactionContext<T = unknown> {
    id: string;
    /** The peer that runs the transaction (the broker verified its ID). */
    coordinator: string;
    operation: string;
    participants: readonly string[];
    /** The `data` the coordinator passed to `run`, as JSON carries it. */
    data: T;
}

/**
 * A participant's part in an operation. `prepare` votes: true to promise that `commit` will succeed (reserve, lock,
 * write ahead), false (or a throw) to refuse, leaving nothing behind. After a yes vote exactly one of `commit` and
 * `abort` follows, once the outcome is known — after a restart too, so both must work from what the app persisted
 * in `prepare`. Each runs once per transaction; only a crash between a handler's end and the record of its state can
 * make `commit` or `abort` run again, so keep them idempotent.
 */
export interface TransactionHandler<T = unknown> {
    prepare(transaction: TransactionContext<T>): boolean | Promise<boolean>;
    commit(transaction: TransactionContext<T>): void | Promise<void>;
    abort(transaction: TransactionContext<T>): void | Promise<void>;
}

/** A transaction's record changed (after it was persisted): for logs, dashboards and tests. */
export interface TransactionEvent {
    role: 'coordinator' | 'participant';
    id: string;
    coordinator: string;
    state: 'prepared' | 'committed' | 'aborted';
}
