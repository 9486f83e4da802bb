import { rpc } from '@deepkit/rpc';

/** Action group for actions only the peer's own app may call; remote callers get AccessDenied (`local-only`). */
export const LOCAL_ONLY = 'switchboard:local-only';

/** Action group for actions safe to run twice. Callers list them in `CallOptions.idempotent` to get retries. */
export const IDEMPOTENT = 'switchboard:idempotent';

/** `@localOnly()`: an RPC action that remote peers may not call (e.g. "clear my messages", "share my file"). */
export function localOnly() {
    return rpc.action().group(LOCAL_ONLY);
}

/** `@idempotent()`: an RPC action with the same effect however often it runs. */
export function idempotent() {
    return rpc.action().group(IDEMPOTENT);
}
