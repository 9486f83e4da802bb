import { rpc } from '@deepkit/rpc';

/** Action group for actions only the peer's own app may call; remote callers get AccessDenied (`local-only`). */
export const LOCAL_ONLY = 'switchboard:local-only';

/** `@localOnly()`: an RPC action that remote peers may not call (e.g. "clear my messages", "share my file"). */
export function localOnly() {
    return rpc.action().group(LOCAL_ONLY);
}

/** Action group for actions reachable over HTTP through any broker (`POST /peers/<id>/<controller>/<action>`). */
export const HTTP_VISIBLE = 'switchboard:http-visible';

/**
 * `@httpVisible()`: an RPC action that HTTP clients may call through the broker, with a JSON array of arguments.
 * Unmarked actions are refused to HTTP callers by the peer itself. Local-only actions stay local-only.
 */
export function httpVisible() {
    return rpc.action().group(HTTP_VISIBLE);
}
