import { createRpcMessage, createRpcMessagePeer, readUint32LE, RpcMessageRouteType, serializeBinaryRpcMessage } from '@deepkit/rpc';
import { deserializeBSONWithoutOptimiser } from '@deepkit/bson';
import { MaxLength, Minimum, validate } from '@deepkit/type';
import { PeerId } from './peer-id';
import { Route } from './deepkit/frame-layout';

/**
 * Frames the broker adds to Deepkit's RPC protocol. Both are peer-routed frames with message id 0 whose source is
 * the caller's connection; stock Deepkit clients ignore unknown types, so they stay compatible.
 *
 * - CallerIdentity: sent to a receiving peer before the first frame from a caller connection (and again when that
 *   connection's peer ID changes). The broker vouches for it; a caller cannot write it.
 * - CallerGone: the caller connection closed; the receiver may drop the state it keeps for that caller.
 */
/** Deepkit's route types live in the Deepkit seam (shared/deepkit/frame-layout.ts); re-exported for wire users. */
export { Route };

export enum SwitchboardFrame {
    CallerIdentity = 100,
    CallerGone = 101,
    /**
     * Client → broker, body-less, before anything else: "I know Switchboard's error classes". Without it the broker
     * sends errors a stock Deepkit client can decode (a plain error whose message starts with the code).
     */
    Hello = 102,
    /** Client → broker: one action call for many peers (MulticastRequest); answered with MulticastResult. */
    Multicast = 103,
    /** Broker → client: what became of each target of a Multicast, in target order. */
    MulticastResult = 104,
    /**
     * Broker → client, body-less, on the client route with id 0: "this broker is draining (about to stop): finish what
     * is in flight and move to another broker". Sent only to clients that sent Hello.
     */
    Drain = 105,
}

/** Targets one multicast may name. */
export const MAX_MULTICAST_TARGETS = 10_000;

/**
 * What became of one target of a multicast. `delivered`: written to the target's connection by its broker.
 * `forwarded`: handed to the broker of the cluster that holds the target (its answer, or an error, comes back like
 * any reply). `unavailable`: the target is on another broker that this broker cannot reach now (ClusterUnavailable).
 * `busy`: the target's connection had no room for the copy (ReceiverBusy; its reply id gets that error).
 * `duplicate`: the target was named before in the same multicast and got one copy, under the id of its first mention.
 */
export type MulticastOutcome = 'delivered' | 'forwarded' | 'unavailable' | 'offline' | 'not-found' | 'denied' | 'busy' | 'duplicate';

/** Whether the broker handed the copy on (to the target's connection, or to the target's broker): a reply will come. */
export function handedOn(outcome: MulticastOutcome | undefined): boolean {
    return outcome === 'delivered' || outcome === 'forwarded';
}

export interface MulticastRequest {
    targets: PeerId[] & MaxLength<typeof MAX_MULTICAST_TARGETS>;
    /**
     * Target i gets message id `firstId + i`, so its reply comes back under an id of its own; the sender reserved
     * the range in its id sequence.
     */
    firstId: number & Minimum<0>;
    /** The BSON body of the Action frame every target receives: `{ controller, method, args }`. */
    body: Uint8Array;
}

export interface MulticastResultBody {
    outcomes: MulticastOutcome[];
}

/** Frame types only the broker may write to a peer; a client sending one is refused and audited. */
export const BROKER_ONLY_FRAMES: ReadonlySet<number> = new Set([SwitchboardFrame.CallerIdentity, SwitchboardFrame.CallerGone, SwitchboardFrame.Drain]);

export interface CallerIdentityBody {
    /** The caller's registered peer ID; unset for a caller that did not register. */
    peerId?: PeerId;
    /** The caller's session name (token name, or `anonymous`). */
    session: string & MaxLength<256>;
    /** Whether the caller decodes Switchboard's error classes (it sent Hello); else answer it with plain errors. */
    typedErrors?: boolean;
}

export function encodeCallerIdentity(receiverPeerId: string, callerConnection: Uint8Array, body: CallerIdentityBody): Uint8Array {
    return serializeBinaryRpcMessage(createRpcMessagePeer<CallerIdentityBody>(0, SwitchboardFrame.CallerIdentity, callerConnection, receiverPeerId, body));
}

export function encodeCallerGone(receiverPeerId: string, callerConnection: Uint8Array): Uint8Array {
    return serializeBinaryRpcMessage(createRpcMessagePeer(0, SwitchboardFrame.CallerGone, callerConnection, receiverPeerId));
}

export function encodeDrain(): Uint8Array {
    return serializeBinaryRpcMessage(createRpcMessage(0, SwitchboardFrame.Drain, undefined, Route.client as RpcMessageRouteType.client));
}

/**
 * The body of a CallerIdentity frame, or undefined when it is not a valid one. Never throws: the frame comes from the
 * network, and a receiver must survive whatever it holds (a compromised broker included).
 */
export function decodeCallerIdentity(buffer: Uint8Array, bodyOffset: number): CallerIdentityBody | undefined {
    // The body must be exactly one BSON document filling the rest of the frame, before the decoder trusts its sizes.
    const size = buffer.length - bodyOffset;
    if (size < 5 || readUint32LE(buffer, bodyOffset) !== size || buffer[buffer.length - 1] !== 0) return undefined;
    try {
        // Decoded as plain BSON and validated strictly: the typed decoder would turn a number into a string ID.
        const raw = deserializeBSONWithoutOptimiser(buffer, bodyOffset);
        // The broker's serializer writes an unset peer ID as null.
        const body: CallerIdentityBody = { peerId: raw.peerId ?? undefined, session: raw.session, typedErrors: raw.typedErrors ?? undefined };
        return validate<CallerIdentityBody>(body).length === 0 ? body : undefined;
    } catch {
        return undefined;
    }
}

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/** A connection id as hex; without Buffer, so browser peers can use it too. */
export function connectionKey(id: Uint8Array): string {
    let key = '';
    for (let i = 0; i < id.length; i++) key += HEX[id[i]];
    return key;
}
