import { CustomError } from '@deepkit/core';
import { entity, ValidationError } from '@deepkit/type';

/**
 * Every error that crosses the wire between broker and peers. Each subclass has an `@entity.name`, so Deepkit RPC
 * rebuilds the same class on the caller: `catch (e) { if (e instanceof PeerOffline) … }` works across processes,
 * and so does `e.code` for callers that prefer strings.
 *
 * Subclasses re-declare `public message` as a constructor property: Deepkit only carries declared properties over
 * the wire, and an inherited message would arrive empty.
 */
export abstract class SwitchboardError extends CustomError {
    abstract readonly code: SwitchboardErrorCode;
}

export type SwitchboardErrorCode =
    | 'PEER_NOT_FOUND' | 'PEER_OFFLINE' | 'PEER_ID_TAKEN' | 'INVALID_PEER_ID' | 'NOT_REGISTERED'
    | 'ACCESS_DENIED' | 'AUTHENTICATION_FAILED'
    | 'PAYLOAD_TOO_LARGE' | 'RATE_LIMITED' | 'MALFORMED_MESSAGE'
    | 'TIMEOUT' | 'CIRCUIT_OPEN' | 'DISCONNECTED' | 'PEER_REPLACED'
    | 'QUOTA_EXCEEDED' | 'NOT_FOUND' | 'CHECKSUM_MISMATCH' | 'INTERNAL_ERROR' | 'CLUSTER_UNAVAILABLE' | 'RECEIVER_BUSY'
    | 'LINKS_UNAVAILABLE' | 'SEALED_PAYLOAD_INVALID' | 'SEALED_KEY_CHANGED';

/** No peer with this ID has ever registered with the broker. */
@entity.name('@switchboard/PeerNotFound')
export class PeerNotFound extends SwitchboardError {
    readonly code = 'PEER_NOT_FOUND';

    constructor(public override message: string, public peerId: string = '') {
        super(message);
    }

    static for(peerId: string): PeerNotFound {
        return new PeerNotFound(`No peer "${peerId}" is known to the broker. Check the ID, or list peers with the discovery API.`, peerId);
    }
}

/** The peer is known but has no live connection (or lost it before answering). */
@entity.name('@switchboard/PeerOffline')
export class PeerOffline extends SwitchboardError {
    readonly code = 'PEER_OFFLINE';

    constructor(public override message: string, public peerId: string = '', public lastSeen?: Date) {
        super(message);
    }

    static for(peerId: string, lastSeen?: Date, detail = 'is offline'): PeerOffline {
        const since = lastSeen ? ` (last seen ${lastSeen.toISOString()})` : '';
        return new PeerOffline(`Peer "${peerId}" ${detail}${since}. Retry when it is back, or queue the message.`, peerId, lastSeen);
    }
}

/**
 * Another live client holds this peer ID, or its owner lost its connection less than the broker's grace period ago
 * (`heldUntil`): only the owner (its reclaim secret or token) may register it until then.
 */
@entity.name('@switchboard/PeerIdTaken')
export class PeerIdTaken extends SwitchboardError {
    readonly code = 'PEER_ID_TAKEN';

    constructor(public override message: string, public peerId: string = '', public heldUntil?: Date) {
        super(message);
    }

    static for(peerId: string): PeerIdTaken {
        return new PeerIdTaken(`Peer ID "${peerId}" is held by another live client. Pick another ID, or reconnect with its reclaim secret or token.`, peerId);
    }

    static held(peerId: string, until: Date): PeerIdTaken {
        return new PeerIdTaken(
            `Peer ID "${peerId}" is held for its owner, whose connection was lost, until ${until.toISOString()}. ` +
            'Its owner may register it with its reclaim secret or token; anyone else may pick another ID, or retry after that time.',
            peerId, until,
        );
    }
}

@entity.name('@switchboard/InvalidPeerId')
export class InvalidPeerId extends SwitchboardError {
    readonly code = 'INVALID_PEER_ID';

    constructor(public override message: string, public peerId: string = '') {
        super(message);
    }
}

/** The action needs a registered peer ID on this connection. */
@entity.name('@switchboard/NotRegistered')
export class NotRegistered extends SwitchboardError {
    readonly code = 'NOT_REGISTERED';

    constructor(public override message: string = 'This connection is not registered as a peer. Register an ID first.') {
        super(message);
    }
}

@entity.name('@switchboard/AccessDenied')
export class AccessDenied extends SwitchboardError {
    readonly code = 'ACCESS_DENIED';

    constructor(public override message: string, public reason: string = '') {
        super(message);
    }
}

@entity.name('@switchboard/AuthenticationFailed')
export class AuthenticationFailed extends SwitchboardError {
    readonly code = 'AUTHENTICATION_FAILED';

    constructor(public override message: string = 'The token is unknown or revoked. Ask the broker operator for a valid token.') {
        super(message);
    }
}

@entity.name('@switchboard/PayloadTooLarge')
export class PayloadTooLarge extends SwitchboardError {
    readonly code = 'PAYLOAD_TOO_LARGE';

    constructor(public override message: string, public size: number = 0, public limit: number = 0) {
        super(message);
    }

    static for(size: number, limit: number): PayloadTooLarge {
        return new PayloadTooLarge(`A message of ${size} bytes exceeds the broker's limit of ${limit} bytes. Split it (e.g. stream chunks).`, size, limit);
    }
}

@entity.name('@switchboard/RateLimited')
export class RateLimited extends SwitchboardError {
    readonly code = 'RATE_LIMITED';

    constructor(public override message: string, public limitPerSecond: number = 0) {
        super(message);
    }

    static for(limitPerSecond: number): RateLimited {
        return new RateLimited(`Too many messages: this connection may send ${limitPerSecond} per second. Slow down and retry.`, limitPerSecond);
    }
}

@entity.name('@switchboard/MalformedMessage')
export class MalformedMessage extends SwitchboardError {
    readonly code = 'MALFORMED_MESSAGE';

    constructor(public override message: string) {
        super(message);
    }
}

/**
 * A call did not end within its timeout. Raised by the SDK on the caller's side. `timeoutMs` is the caller's whole
 * deadline; `stage` says where the call stood when it ran out: waiting for this peer's own registration
 * ('registration'), for the target's action types ('types'), or for the answer ('action').
 */
@entity.name('@switchboard/Timeout')
export class Timeout extends SwitchboardError {
    readonly code = 'TIMEOUT';

    constructor(public override message: string, public timeoutMs: number = 0, public stage: string = '') {
        super(message);
    }
}

/** The SDK stopped calling a peer after repeated failures; it retries after a cool-down. */
@entity.name('@switchboard/CircuitOpen')
export class CircuitOpen extends SwitchboardError {
    readonly code = 'CIRCUIT_OPEN';

    constructor(public override message: string, public peerId: string = '', public retryAt?: Date) {
        super(message);
    }
}

/** The connection to the broker closed while the call was pending. */
@entity.name('@switchboard/Disconnected')
export class Disconnected extends SwitchboardError {
    readonly code = 'DISCONNECTED';

    constructor(public override message: string = 'The connection to the broker closed before the call ended. It is safe to retry idempotent calls.') {
        super(message);
    }
}

/** The WebSocket close code with which the broker ends a connection whose peer ID its owner took over. */
export const PEER_REPLACED_CLOSE_CODE = 4409;

/**
 * Another client took this peer ID over with the same reclaim secret (the same storage) or the same token: another
 * process runs as this peer. The replaced peer stops and does not take the ID back, or the two would fight forever.
 */
@entity.name('@switchboard/PeerReplaced')
export class PeerReplaced extends SwitchboardError {
    readonly code = 'PEER_REPLACED';

    constructor(public override message: string, public peerId: string = '') {
        super(message);
    }

    static for(peerId: string): PeerReplaced {
        return new PeerReplaced(
            `Another process took over peer ID "${peerId}" with the same reclaim secret or token (e.g. two apps sharing one storage file), so this one stopped. ` +
            'Give each process its own ID or storage, or close the other one and start this one again.',
            peerId,
        );
    }
}

/** A per-party limit is used up: a relay's per-sender store quota, or the broker's live streams per connection. */
@entity.name('@switchboard/QuotaExceeded')
export class QuotaExceeded extends SwitchboardError {
    readonly code = 'QUOTA_EXCEEDED';

    constructor(public override message: string, public limit: number = 0) {
        super(message);
    }
}

/** The thing asked for (a file, a group, a message) does not exist on the answering peer. */
@entity.name('@switchboard/NotFound')
export class NotFound extends SwitchboardError {
    readonly code = 'NOT_FOUND';

    constructor(public override message: string, public what: string = '') {
        super(message);
    }
}

/** Data arrived, but its SHA-256 does not match what was announced. Nothing was written. */
@entity.name('@switchboard/ChecksumMismatch')
export class ChecksumMismatch extends SwitchboardError {
    readonly code = 'CHECKSUM_MISMATCH';

    constructor(public override message: string) {
        super(message);
    }
}

/**
 * The broker cannot reach the rest of its cluster (its NATS link is down, or the bus refused a publish): a call to a
 * peer on another broker failed without reaching it. Says nothing about the target, so an SDK circuit breaker must
 * not count it against the target. Peers on the same broker stay reachable; retry once the cluster is back.
 */
@entity.name('@switchboard/ClusterUnavailable')
export class ClusterUnavailable extends SwitchboardError {
    readonly code = 'CLUSTER_UNAVAILABLE';

    constructor(public override message: string, public peerId: string = '', public reason: string = '') {
        super(message);
    }

    static for(peerId: string, cause: string): ClusterUnavailable {
        return new ClusterUnavailable(
            `Peer "${peerId}" is on another broker and this broker cannot reach the cluster (${cause}). ` +
            'The target was not reached; retry when the cluster is back. Peers on this broker stay reachable.',
            peerId, cause,
        );
    }
}

/**
 * The target peer's connection has no room for this message now (it has more unsent bytes waiting than the broker
 * allows one connection): the message was not delivered, and the target was not disconnected. Retry later, or send
 * less at once. Counted against the sender, which filled the target's buffer.
 */
@entity.name('@switchboard/ReceiverBusy')
export class ReceiverBusy extends SwitchboardError {
    readonly code = 'RECEIVER_BUSY';

    constructor(public override message: string, public peerId: string = '') {
        super(message);
    }

    static for(peerId: string, bytes: number): ReceiverBusy {
        return new ReceiverBusy(
            `Peer "${peerId}" has no room for a message of ${bytes} bytes now: too much sent to it is still unread. ` +
            'It was not delivered. Retry later, or send less at once.',
            peerId,
        );
    }
}

/**
 * No direct link can be opened: this platform has no WebRTC (no `RTCPeerConnection` global and the optional
 * `@roamhq/wrtc` package is not installed), or links are turned off. Calls still go through the broker.
 */
@entity.name('@switchboard/LinksUnavailable')
export class LinksUnavailable extends SwitchboardError {
    readonly code = 'LINKS_UNAVAILABLE';

    constructor(public override message: string) {
        super(message);
    }
}

/**
 * A sealed payload (end-to-end encrypted chat message, relay payload, file chunk or collaboration update) did not
 * open: altered on its way, sealed for another recipient or purpose, or not a sealed box at all. Nothing of it was
 * stored or applied. `reason`: `tampered`, `wrong-recipient-key`, `malformed`, `too-large`, `no-key`,
 * `plaintext-from-sealed-contact` (a chat message in plaintext from a contact whose key is pinned); and, before anything
 * is sent, `recipient-key-ephemeral` (a payload to be held for a peer whose key lives in memory: see `peer.sealing`).
 */
@entity.name('@switchboard/SealedPayloadInvalid')
export class SealedPayloadInvalid extends SwitchboardError {
    readonly code = 'SEALED_PAYLOAD_INVALID';

    constructor(public override message: string, public reason: string = '', public peerId: string = '') {
        super(message);
    }
}

/**
 * The key a contact seals with (or publishes) is not the one pinned for it on first use: someone may be in the middle,
 * or the contact reinstalled. Nothing is sealed to it or accepted from it until the user compares fingerprints and
 * calls `peer.sealing.trust(peerId)`. `keyChanged$` reported it.
 */
@entity.name('@switchboard/SealedKeyChanged')
export class SealedKeyChanged extends SwitchboardError {
    readonly code = 'SEALED_KEY_CHANGED';

    constructor(public override message: string, public peerId: string = '', public pinnedFingerprint: string = '', public offeredFingerprint: string = '') {
        super(message);
    }
}

/**
 * The called peer failed in a way it does not explain to callers (a bug, its storage): what went wrong stays in its
 * own log under `reference`, so no stack overflow or SQL text reaches a remote party.
 */
@entity.name('@switchboard/InternalError')
export class InternalError extends SwitchboardError {
    readonly code = 'INTERNAL_ERROR';

    constructor(public override message: string, public reference: string = '') {
        super(message);
    }

    static for(reference: string): InternalError {
        return new InternalError(`The called peer failed to handle this call (reference ${reference} in its log). Retry later, or tell its operator.`, reference);
    }
}

/**
 * The error as a client that does not know Switchboard's classes can decode it: a plain error whose message starts
 * with the stable code (`PEER_NOT_FOUND: No peer "bob" is known …`). A stock Deepkit client that receives an error
 * class it has not loaded throws inside its message handler, and its process dies.
 */
export function plainError(error: SwitchboardError): Error {
    const plain = new Error(`${error.code}: ${error.message}`);
    plain.stack = '';
    return plain;
}

/** Invalid arguments: Deepkit's own validation error, which carries the path of each bad field. */
export { ValidationError };
