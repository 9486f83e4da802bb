import { createRpcMessagePeer, serializeBinaryRpcMessage } from '@deepkit/rpc';
import { getBSONDeserializer } from '@deepkit/bson';

/**
 * Frames the broker adds to Deepkit's RPC protocol. Both are peer-routed frames with message id 0 whose source is
 * the caller's connection; stock Deepkit clients ignore unknown types, so they stay compatible.
 *
 * - CallerIdentity: sent to a receiving peer before the first frame from a caller connection (and again when that
 *   connection's peer ID changes). The broker vouches for it; a caller cannot write it.
 * - CallerGone: the caller connection closed; the receiver may drop the state it keeps for that caller.
 */
/**
 * Deepkit's route types. Its `RpcMessageRouteType` is a `const enum`, which transpile-only builds (ts-node -T,
 * esbuild) cannot inline across packages, so code that runs that way compares against these.
 */
export const Route = { client: 0, server: 1, sourceDest: 2, peer: 3 } as const;

export enum SwitchboardFrame {
    CallerIdentity = 100,
    CallerGone = 101,
}

export interface CallerIdentityBody {
    /** The caller's registered peer ID; unset for a caller that did not register. */
    peerId?: string;
    /** The caller's session name (token name, or `anonymous`). */
    session: string;
}

export function encodeCallerIdentity(receiverPeerId: string, callerConnection: Uint8Array, body: CallerIdentityBody): Uint8Array {
    return serializeBinaryRpcMessage(createRpcMessagePeer<CallerIdentityBody>(0, SwitchboardFrame.CallerIdentity, callerConnection, receiverPeerId, body));
}

export function encodeCallerGone(receiverPeerId: string, callerConnection: Uint8Array): Uint8Array {
    return serializeBinaryRpcMessage(createRpcMessagePeer(0, SwitchboardFrame.CallerGone, callerConnection, receiverPeerId));
}

const decodeIdentity = getBSONDeserializer<CallerIdentityBody>();

export function decodeCallerIdentity(buffer: Uint8Array, bodyOffset: number): CallerIdentityBody {
    return decodeIdentity(buffer, bodyOffset);
}

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/** A connection id as hex; without Buffer, so browser peers can use it too. */
export function connectionKey(id: Uint8Array): string {
    let key = '';
    for (let i = 0; i < id.length; i++) key += HEX[id[i]];
    return key;
}
