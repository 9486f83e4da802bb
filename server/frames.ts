import { createRpcMessage, createRpcMessageSourceDest, RpcMessageRouteType, rpcEncodeError, rpcError, RpcTypes, serializeBinaryRpcMessage } from '@deepkit/rpc';
import { typeOf, validate } from '@deepkit/type';
import { plainError, SwitchboardError } from '@switchboard/protocol';
import {
    checkBsonDocument, frameId, FrameProblem, frameType, MulticastOutcome, MulticastRequest, MulticastResultBody, peerFrameHeaderLength, readUint32,
    Route, ROUTE_OFFSET, SOURCE_OFFSET, SwitchboardFrame, writeFrameId, writePeerFrameHeader,
} from '@switchboard/protocol/internal';
import { getBSONDeserializer } from '@deepkit/bson';

/**
 * The frames the broker writes, and the body fields it reads without decoding bodies. Frames read here have passed
 * `inspectFrame` (shared/frame-check.ts) or were written by the broker itself. The header layout itself (offsets,
 * `frameId`, `frameType`) is Deepkit's and lives in the Deepkit seam, shared/deepkit/frame-layout.ts.
 */
export { frameId, frameType, ROUTE_OFFSET, SOURCE_OFFSET };

export interface ActionName {
    controller?: string;
    action?: string;
}

const utf8 = new TextDecoder();

/**
 * The controller and method of an Action frame (BSON `{ controller, method, args }`), read from the body's bytes
 * without decoding the body: the broker names calls in its audit trail but never needs their arguments.
 * The frame must have passed `inspectFrame`, which checked every length read here.
 */
export function actionNameOf(frame: Uint8Array, bodyOffset: number): ActionName {
    const name: ActionName = {};
    const end = bodyOffset + readUint32(frame, bodyOffset) - 1;
    let position = bodyOffset + 4;
    while (position < end && (name.controller === undefined || name.action === undefined)) {
        const elementType = frame[position++];
        const nameStart = position;
        while (frame[position] !== 0) position++;
        const key = frame[nameStart] === 99 /* c */ ? 'controller' : frame[nameStart] === 109 /* m */ ? 'method' : '';
        const isKey = key !== '' && position - nameStart === key.length;
        position++;
        if (elementType !== 0x02) return name; // Deepkit writes controller and method first, as strings.
        const length = readUint32(frame, position);
        const value = utf8.decode(frame.subarray(position + 4, position + 4 + length - 1));
        if (isKey && key === 'controller') name.controller = value;
        else if (isKey) name.action = value;
        position += 4 + length;
    }
    return name;
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

/**
 * The error as a client can decode it. A stock Deepkit client that receives an error class it has not loaded
 * (`@switchboard/PeerNotFound`) throws inside its message handler and its process dies; so only clients that said
 * they know Switchboard's errors (the SDK's Hello frame) get them typed. Others get a plain error whose message
 * starts with the stable code: `PEER_NOT_FOUND: No peer "bob" is known …`.
 */
export function errorForClient(error: Error, typed: boolean): Error {
    if (typed || !(error instanceof SwitchboardError)) return withoutStack(error);
    return plainError(error);
}

export function errorFrame(id: number, error: Error): Uint8Array {
    return serializeBinaryRpcMessage(createRpcMessage(id, RpcTypes.Error, rpcEncodeError(withoutStack(error)), Route.client as RpcMessageRouteType.client, typeOf<rpcError>()));
}

/** An error answering a peer request, as if the peer had sent it, so it lands on the caller's pending call. */
export function replyErrorFrame(id: number, source: Uint8Array, destination: Uint8Array, error: Error): Uint8Array {
    return serializeBinaryRpcMessage(createRpcMessageSourceDest(id, RpcTypes.Error, source, destination, rpcEncodeError(withoutStack(error)), typeOf<rpcError>()));
}

/**
 * The same error for many request ids, as concatenated frames in messages of at most `maxBytes` (Deepkit's stream
 * reader splits them). Serializes the error once and patches each id: failing 200,000 pending calls must not take
 * 200,000 BSON encodings and socket writes.
 */
export function replyErrorFrames(ids: Iterable<number>, source: Uint8Array, destination: Uint8Array, error: Error, maxBytes = 1024 * 1024): Uint8Array[] {
    const template = replyErrorFrame(0, source, destination, error);
    const perMessage = Math.max(1, Math.floor(maxBytes / template.byteLength));
    const messages: Uint8Array[] = [];
    let message: Uint8Array | undefined;
    let count = 0;
    for (const id of ids) {
        if (!message || count === perMessage) {
            message = new Uint8Array(template.byteLength * perMessage);
            messages.push(message);
            count = 0;
        }
        const offset = count * template.byteLength;
        message.set(template, offset);
        writeFrameId(message, offset, id);
        count++;
    }
    if (message && count < perMessage) messages[messages.length - 1] = message.subarray(0, count * template.byteLength);
    return messages;
}

/** The size of a multicast copy for `peerId`: a peer-routed frame header around `body`. */
export function multicastCopySize(peerId: string, body: Uint8Array): number {
    return peerFrameHeaderLength(peerId) + body.byteLength;
}

/** A peer-routed frame from `source` to `peerId` around an already serialized BSON body (for multicast copies). */
export function peerFrame(id: number, source: Uint8Array, peerId: string, type: number, body: Uint8Array): Uint8Array {
    const header = peerFrameHeader(id, source, peerId, type, body.byteLength);
    const frame = Buffer.allocUnsafe(header.byteLength + body.byteLength);
    frame.set(header, 0);
    frame.set(body, header.byteLength);
    return frame;
}

/**
 * The header of a peer-routed frame (everything before the body; its size field counts the body): a multicast copy
 * is this header and the multicast's one body, written to the socket side by side without joining them.
 */
export function peerFrameHeader(id: number, source: Uint8Array, peerId: string, type: number, bodyLength: number): Uint8Array {
    // Not zeroed first: every byte is written.
    const frame = Buffer.allocUnsafe(peerFrameHeaderLength(peerId));
    writePeerFrameHeader(frame, id, source, peerId, type, bodyLength);
    return frame;
}

const readMulticast = getBSONDeserializer<MulticastRequest>();

/**
 * The request of a Multicast frame that passed `inspectFrame`, validated: peer IDs, a target count within
 * MAX_MULTICAST_TARGETS, an id range within 32 bits, and an Action body that is exactly one sound BSON document.
 */
export function readMulticastRequest(frame: Uint8Array, bodyOffset: number): MulticastRequest | FrameProblem {
    if (bodyOffset >= frame.length) return 'A multicast needs a body { targets, firstId, body }.';
    let request: MulticastRequest;
    try {
        request = readMulticast(frame, bodyOffset);
    } catch {
        return 'A multicast body must be { targets, firstId, body }.';
    }
    const [problem] = validate<MulticastRequest>(request);
    if (problem) return `Invalid multicast: ${problem.path} ${problem.message}`.slice(0, 200);
    if (!Number.isSafeInteger(request.firstId) || request.firstId + request.targets.length > 2 ** 32) return 'A multicast id range must fit in 32 bits.';
    const bodyProblem = checkBsonDocument(request.body, 0, request.body.byteLength, 0, true);
    if (bodyProblem) return bodyProblem;
    return request;
}

export function multicastResultFrame(id: number, outcomes: MulticastOutcome[]): Uint8Array {
    return serializeBinaryRpcMessage(createRpcMessage<MulticastResultBody>(id, SwitchboardFrame.MulticastResult, { outcomes }, Route.client as RpcMessageRouteType.client));
}

export function chunkAckFrame(id: number): Uint8Array {
    return serializeBinaryRpcMessage(createRpcMessage(id, RpcTypes.ChunkAck, undefined, Route.client as RpcMessageRouteType.client));
}

/**
 * Reply types after which the request they answer is over. Streams (observables, collections) end on messages the
 * broker cannot attribute reliably, so their ids stay until evicted or the caller leaves.
 */
export const FINAL_REPLY_TYPES = new Set<number>([
    RpcTypes.Ack, RpcTypes.Error, RpcTypes.ResponseActionSimple, RpcTypes.ResponseActionType, RpcTypes.ResponseActionReturnType,
]);
