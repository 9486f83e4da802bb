/**
 * Deepkit RPC's frame layout (protocol version 1): every offset Switchboard reads or writes in a frame is named here,
 * and nowhere else. tests/deepkit/frame-layout.test.ts writes frames with Deepkit's own writer and reads them with
 * these (and the other way round), so a Deepkit upgrade that moves a field fails there, not in production.
 *
 * <size u32 LE> <version u8 = 1> <id u32 LE> <route u8> [route data] <composite u8> <type u8> <body>
 * route data: client, server → none; sourceDest → <source 16><destination 16>; peer → <source 16><peer ID, NUL>.
 *
 * Readers here trust the frame: use them on frames that passed `inspectFrame` (shared/frame-check.ts, the validating
 * reader built on the same constants) or that Switchboard wrote itself.
 */

/**
 * Deepkit's route types. Its `RpcMessageRouteType` is a `const enum`, which transpile-only builds (ts-node -T,
 * esbuild) cannot inline across packages, so code that runs that way compares against these.
 */
export const Route = { client: 0, server: 1, sourceDest: 2, peer: 3 } as const;

export const FRAME_VERSION = 1;
export const VERSION_OFFSET = 4;
export const ID_OFFSET = 5;
export const ROUTE_OFFSET = 9;
/** Where the route data starts: the source connection id of sourceDest and peer frames. */
export const SOURCE_OFFSET = 10;
/** Connection ids (source, destination) are 16 bytes. */
export const CONNECTION_ID_BYTES = 16;
/** The destination connection id of a sourceDest frame. */
export const DESTINATION_OFFSET = SOURCE_OFFSET + CONNECTION_ID_BYTES;
/** The NUL-terminated peer ID of a peer frame. */
export const PEER_ID_OFFSET = SOURCE_OFFSET + CONNECTION_ID_BYTES;
/** The smallest frame: size, version, id, route, composite flag and type, no body. */
export const MIN_FRAME_SIZE = 12;
/** A composite body is a sequence of parts: <size u32> <type u8> <BSON document>. */
export const COMPOSITE_PART_HEADER_BYTES = 5;

export function readUint32(buffer: Uint8Array, offset: number): number {
    return (buffer[offset] | buffer[offset + 1] << 8 | buffer[offset + 2] << 16) + buffer[offset + 3] * 2 ** 24;
}

/** The size field at `offset`, or -1 when fewer than 4 bytes are there. */
export function declaredFrameSize(buffer: Uint8Array, offset = 0): number {
    return buffer.length - offset < 4 ? -1 : readUint32(buffer, offset);
}

/** The message id of the frame at `offset` (0 when the frame is too short to hold one). */
export function frameId(frame: Uint8Array, offset = 0): number {
    return frame.length - offset < ID_OFFSET + 4 ? 0 : readUint32(frame, offset + ID_OFFSET);
}

/** Writes a message id into the frame at `offset` (a frame is reused as a template for many ids). */
export function writeFrameId(frame: Uint8Array, offset: number, id: number): void {
    new DataView(frame.buffer, frame.byteOffset + offset + ID_OFFSET, 4).setUint32(0, id, true);
}

/** Offset of the composite flag: after the route data, which depends on the route type. */
export function compositeOffset(frame: Uint8Array): number {
    const route = frame[ROUTE_OFFSET];
    if (route === Route.sourceDest) return DESTINATION_OFFSET + CONNECTION_ID_BYTES;
    if (route === Route.peer) {
        let offset = PEER_ID_OFFSET;
        while (offset < frame.length && frame[offset] !== 0) offset++;
        return offset + 1;
    }
    return SOURCE_OFFSET;
}

export function frameType(frame: Uint8Array): number {
    return frame[compositeOffset(frame) + 1];
}

/** Where the body starts. */
export function bodyOffsetOf(frame: Uint8Array): number {
    return compositeOffset(frame) + 2;
}

/** The source connection id of a sourceDest or peer frame (a view, not a copy). */
export function sourceOf(frame: Uint8Array): Uint8Array {
    return frame.subarray(SOURCE_OFFSET, SOURCE_OFFSET + CONNECTION_ID_BYTES);
}

/** The destination connection id of a sourceDest frame (a view, not a copy). */
export function destinationOf(frame: Uint8Array): Uint8Array {
    return frame.subarray(DESTINATION_OFFSET, DESTINATION_OFFSET + CONNECTION_ID_BYTES);
}

/** The bytes of a peer frame's header for `peerId`: size, version, id, route, source, peer ID, composite, type. */
export function peerFrameHeaderLength(peerId: string): number {
    return PEER_ID_OFFSET + peerId.length + 1 + 2;
}

/**
 * Writes the header of a peer-routed frame into `frame` (at least `peerFrameHeaderLength(peerId)` bytes; every one
 * of them is written, so it need not be zeroed). Its size field counts a body of `bodyLength` after it.
 * Peer IDs are ASCII (shared/peer-id.ts).
 */
export function writePeerFrameHeader(frame: Uint8Array, id: number, source: Uint8Array, peerId: string, type: number, bodyLength: number): void {
    const length = peerFrameHeaderLength(peerId);
    const view = new DataView(frame.buffer, frame.byteOffset, length);
    view.setUint32(0, length + bodyLength, true);
    frame[VERSION_OFFSET] = FRAME_VERSION;
    view.setUint32(ID_OFFSET, id, true);
    frame[ROUTE_OFFSET] = Route.peer;
    frame.set(source, SOURCE_OFFSET);
    let offset = PEER_ID_OFFSET;
    for (let i = 0; i < peerId.length; i++) frame[offset++] = peerId.charCodeAt(i);
    frame[offset++] = 0;
    frame[offset++] = 0; // not composite
    frame[offset] = type;
}
