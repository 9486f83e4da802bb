import { rpc } from '@deepkit/rpc';

/** Action group for actions only the peer's own app may call; remote callers get AccessDenied (`local-only`). */
export const LOCAL_ONLY = 'switchboard:local-only';

/** `@localOnly()`: an RPC action that remote peers may not call (e.g. "clear my messages", "share my file"). */
export function localOnly() {
    return rpc.action().group(LOCAL_ONLY);
}
