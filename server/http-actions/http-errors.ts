import { ValidationError } from '@deepkit/type';
import { SwitchboardError, SwitchboardErrorCode } from '@switchboard/protocol';
import { RemoteActionError } from './http-caller';

/** The JSON body of every failed HTTP action call: the stable code first, then what to do about it. */
export interface HttpErrorBody {
    code: string;
    message: string;
    /** AccessDenied's reason, NotFound's what, … */
    reason?: string;
    /** ValidationError: each argument that failed, with its path. */
    errors?: { path: string, code: string, message: string }[];
}

const STATUS: Partial<Record<SwitchboardErrorCode, number>> = {
    MALFORMED_MESSAGE: 400,
    INVALID_PEER_ID: 400,
    AUTHENTICATION_FAILED: 401,
    NOT_REGISTERED: 403,
    ACCESS_DENIED: 403,
    PEER_NOT_FOUND: 404,
    NOT_FOUND: 404,
    PAYLOAD_TOO_LARGE: 413,
    RATE_LIMITED: 429,
    QUOTA_EXCEEDED: 429,
    PEER_OFFLINE: 503,
    CIRCUIT_OPEN: 503,
    DISCONNECTED: 503,
    PEER_REPLACED: 503,
    CLUSTER_UNAVAILABLE: 503,
    TIMEOUT: 504,
};

/**
 * The HTTP status and body of an error. Switchboard's errors keep their code; a ValidationError is 400
 * `VALIDATION_ERROR` with its items; AccessDenied for a caller that did not authenticate is 401; whatever else the
 * action threw is 500 `ACTION_FAILED` with its message (the same text an RPC caller would get).
 */
export function httpError(error: unknown): { status: number, body: HttpErrorBody } {
    if (error instanceof ValidationError) {
        return { status: 400, body: { code: 'VALIDATION_ERROR', message: error.message, errors: error.errors.map(item => ({ path: item.path, code: item.code, message: item.message })) } };
    }
    if (error instanceof SwitchboardError) {
        const reason = (error as { reason?: unknown, what?: unknown }).reason ?? (error as { what?: unknown }).what;
        const body: HttpErrorBody = { code: error.code, message: error.message, ...(typeof reason === 'string' && reason ? { reason } : {}) };
        const status = error.code === 'ACCESS_DENIED' && reason === 'not-authenticated' ? 401 : STATUS[error.code] ?? 500;
        return { status, body };
    }
    const message = error instanceof Error ? error.message : String(error);
    // A plain error from a peer that answered a stock client: its message starts with the code (errorForClient).
    const coded = /^([A-Z_]+): /.exec(message);
    if (coded && STATUS[coded[1] as SwitchboardErrorCode]) return { status: STATUS[coded[1] as SwitchboardErrorCode]!, body: { code: coded[1], message: message.slice(coded[0].length) } };
    return { status: 500, body: { code: 'ACTION_FAILED', message: message || (error instanceof RemoteActionError ? error.className : 'The action failed.') } };
}
