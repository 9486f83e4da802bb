import { createRpcMessage, createRpcMessageSourceDest, RpcMessageRouteType, rpcEncodeError, rpcError, RpcTypes, serializeBinaryRpcMessage } from '@deepkit/rpc';
import { typeOf } from '@deepkit/type';
import { Route } from '../shared/wire';

/**
 * Reading and writing the few header fields the broker needs, without decoding bodies.
 * Layout (Deepkit RPC): <size u32> <version u8> <id u32> <route u8> [route data] <composite u8> <type u8> <body>.
 */
export const ROUTE_OFFSET = 9;
export const SOURCE_OFFSET = 10;

export function frameSize(frame: Uint8Array): number {
    return frame.length < 4 ? -1 : (frame[0] | frame[1] << 8 | frame[2] << 16) + frame[3] * 2 ** 24;
}

export function frameId(frame: Uint8Array): number {
    return (frame[5] | frame[6] << 8 | frame[7] << 16) + frame[8] * 2 ** 24;
}

/** Offset of the composite flag: after the route data, which depends on the route type. */
function compositeOffset(frame: Uint8Array): number {
    const route = frame[ROUTE_OFFSET];
    if (route === Route.sourceDest) return SOURCE_OFFSET + 32;
    if (route === Route.peer) {
        let offset = SOURCE_OFFSET + 16;
        while (offset < frame.length && frame[offset] !== 0) offset++;
        return offset + 1;
    }
    return SOURCE_OFFSET;
}

export function frameType(frame: Uint8Array): number {
    return frame[compositeOffset(frame) + 1];
}

export function sameBytes(frame: Uint8Array, offset: number, expected: Uint8Array): boolean {
    for (let i = 0; i < expected.length; i++) if (frame[offset + i] !== expected[i]) return false;
    return true;
}

/** Errors for clients carry class, code and message, never a stack trace. */
export function withoutStack<E extends Error>(error: E): E {
    error.stack = '';
    return error;
}

export function errorFrame(id: number, error: Error): Uint8Array {
    return serializeBinaryRpcMessage(createRpcMessage(id, RpcTypes.Error, rpcEncodeError(withoutStack(error)), Route.client as RpcMessageRouteType.client, typeOf<rpcError>()));
}

/** An error answering a peer request, as if the peer had sent it, so it lands on the caller's pending call. */
export function replyErrorFrame(id: number, source: Uint8Array, destination: Uint8Array, error: Error): Uint8Array {
    return serializeBinaryRpcMessage(createRpcMessageSourceDest(id, RpcTypes.Error, source, destination, rpcEncodeError(withoutStack(error)), typeOf<rpcError>()));
}

/**
 * Reply types after which the request they answer is over. Streams (observables, collections) end on messages the
 * broker cannot attribute reliably, so their ids stay until evicted or the caller leaves.
 */
export const FINAL_REPLY_TYPES = new Set<number>([
    RpcTypes.Ack, RpcTypes.Error, RpcTypes.ResponseActionSimple, RpcTypes.ResponseActionType, RpcTypes.ResponseActionReturnType,
]);
