/**
 * `@switchboard/protocol/internal/sqlite`: the run-time patch of @deepkit/sqlite (loading this module applies it),
 * apart from `./internal` because only code with a SQLite database loads @deepkit/sqlite (browsers never do).
 */
export * from '../deepkit/sqlite-patch';
