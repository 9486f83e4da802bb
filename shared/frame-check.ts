/**
 * Whole-frame validation of Deepkit RPC frames, before any Deepkit reader or decoder sees them.
 *
 * Deepkit trusts every length it reads: a peer ID without its terminating NUL sends `readBinaryRpcMessage` past the
 * end of the buffer for good, and a BSON length field claiming 1 GiB makes its typed decoders walk a gigabyte of
 * `undefined`. So everything a remote party sends passes `inspectFrame` first: header fields are bounded and every
 * length inside the body is checked against the bytes that are really there. Both run in time linear in the frame's
 * real size, without allocating.
 *
 * Layout (Deepkit RPC 1): <size u32> <version u8 = 1> <id u32> <route u8> [route data] <composite u8> <type u8> <body>
 * route data: sourceDest → <source 16><destination 16>; peer → <source 16><peer ID, ASCII, NUL-terminated>.
 * body: one BSON document, or (composite) a sequence of <size u32><type u8><BSON document>.
 */
import {
    COMPOSITE_PART_HEADER_BYTES, CONNECTION_ID_BYTES, declaredFrameSize, DESTINATION_OFFSET, FRAME_VERSION, ID_OFFSET, MIN_FRAME_SIZE,
    PEER_ID_OFFSET, readUint32, Route, ROUTE_OFFSET, SOURCE_OFFSET, VERSION_OFFSET,
} from './deepkit/frame-layout';

// The layout is Deepkit's; its offsets live in the Deepkit seam. Re-exported for the readers that import them here.
export { declaredFrameSize, MIN_FRAME_SIZE, PEER_ID_OFFSET, readUint32, ROUTE_OFFSET, SOURCE_OFFSET };
/** Peer IDs are at most 64 characters (shared/peer-id.ts). */
const MAX_PEER_ID_LENGTH = 64;
/** Nesting deeper than this is refused: Deepkit's decoders recurse per level. */
const MAX_BSON_DEPTH = 64;


/** The header of a frame that passed `inspectFrame`. Offsets are relative to the frame's first byte. */
export interface FrameHeader {
    size: number;
    id: number;
    route: number;
    composite: boolean;
    type: number;
    bodyOffset: number;
    /** The peer ID of a peer-routed frame ('' otherwise). */
    peerId: string;
}

/** Why a frame was refused: a sentence for the sender. */
export type FrameProblem = string;

function readInt32(buffer: Uint8Array, offset: number): number {
    return buffer[offset] | buffer[offset + 1] << 8 | buffer[offset + 2] << 16 | buffer[offset + 3] << 24;
}

/** A peer ID byte: letters, digits, `.`, `_`, `-` (the ASCII subset of shared/peer-id.ts). */
function isPeerIdByte(byte: number): boolean {
    return (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte === 46 || byte === 95 || byte === 45;
}

/**
 * Checks one whole frame (exactly `frame.length` bytes, as the size field must say) and returns its header, or a
 * problem when anything in it disagrees with the bytes.
 */
export function inspectFrame(frame: Uint8Array): FrameHeader | FrameProblem {
    const size = frame.length;
    if (size < MIN_FRAME_SIZE) return `A frame has at least ${MIN_FRAME_SIZE} bytes; got ${size}.`;
    const declared = readUint32(frame, 0);
    if (declared !== size) return `The frame's size field says ${declared} bytes, but the frame has ${size}.`;
    if (frame[VERSION_OFFSET] !== FRAME_VERSION) return `Unknown protocol version ${frame[VERSION_OFFSET]} (expected ${FRAME_VERSION}).`;
    const id = readUint32(frame, ID_OFFSET);
    const route = frame[ROUTE_OFFSET];
    let offset = SOURCE_OFFSET;
    let peerId = '';
    if (route === Route.sourceDest) {
        offset = DESTINATION_OFFSET + CONNECTION_ID_BYTES;
    } else if (route === Route.peer) {
        offset = PEER_ID_OFFSET;
        const limit = Math.min(size, PEER_ID_OFFSET + MAX_PEER_ID_LENGTH + 1);
        while (offset < limit && frame[offset] !== 0) {
            if (!isPeerIdByte(frame[offset])) return 'The peer ID in the frame header has a character other than letters, digits, ".", "_" or "-".';
            offset++;
        }
        if (offset >= limit || frame[offset] !== 0) return `The peer ID in the frame header is not terminated within ${MAX_PEER_ID_LENGTH} characters.`;
        if (offset === PEER_ID_OFFSET) return 'The peer ID in the frame header is empty.';
        peerId = asciiOf(frame, PEER_ID_OFFSET, offset);
        offset++;
    } else if (route !== Route.client && route !== Route.server) {
        return `Unknown route type ${route}.`;
    }
    if (offset + 2 > size) return 'The frame ends inside its header.';
    const compositeFlag = frame[offset];
    if (compositeFlag > 1) return `Invalid composite flag ${compositeFlag}.`;
    const type = frame[offset + 1];
    const bodyOffset = offset + 2;
    const composite = compositeFlag === 1;
    const problem = composite ? checkCompositeBody(frame, bodyOffset, size) : bodyOffset === size ? undefined : checkBsonDocument(frame, bodyOffset, size, 0, true);
    if (problem) return problem;
    return { size, id, route, composite, type, bodyOffset, peerId };
}

function asciiOf(buffer: Uint8Array, start: number, end: number): string {
    let text = '';
    for (let i = start; i < end; i++) text += String.fromCharCode(buffer[i]);
    return text;
}

function checkCompositeBody(frame: Uint8Array, offset: number, end: number): FrameProblem | undefined {
    while (offset < end) {
        if (offset + COMPOSITE_PART_HEADER_BYTES > end) return 'A composite part ends inside its header.';
        const partSize = readUint32(frame, offset);
        offset += COMPOSITE_PART_HEADER_BYTES;
        if (partSize > end - offset) return `A composite part claims ${partSize} bytes; ${end - offset} are left.`;
        if (partSize) {
            const problem = checkBsonDocument(frame, offset, offset + partSize, 0, true);
            if (problem) return problem;
        }
        offset += partSize;
    }
    return;
}

/**
 * Checks the BSON document at `offset`: its length fits in `end` (exactly, when `exact`), every element's length
 * fits inside the document, strings and names are terminated, nesting is bounded. Returns a problem or undefined.
 */
export function checkBsonDocument(buffer: Uint8Array, offset: number, end: number, depth = 0, exact = false): FrameProblem | undefined {
    if (depth > MAX_BSON_DEPTH) return `The body nests deeper than ${MAX_BSON_DEPTH} levels.`;
    if (end - offset < 5) return 'A BSON document in the body is shorter than 5 bytes.';
    const length = readInt32(buffer, offset);
    if (length < 5 || length > end - offset) return `A BSON document in the body claims ${length} bytes; ${end - offset} are there.`;
    if (exact && length !== end - offset) return `The body's BSON document claims ${length} bytes, but the body has ${end - offset}.`;
    const documentEnd = offset + length - 1;
    if (buffer[documentEnd] !== 0) return 'A BSON document in the body is not terminated.';
    let position = offset + 4;
    while (position < documentEnd) {
        const elementType = buffer[position++];
        // The element's name: a NUL-terminated string inside the document.
        while (position < documentEnd && buffer[position] !== 0) position++;
        if (position >= documentEnd) return 'A BSON element name in the body is not terminated.';
        position++;
        const size = bsonValueSize(buffer, elementType, position, documentEnd, depth);
        if (typeof size === 'string') return size;
        position += size;
        if (position > documentEnd) return 'A BSON value in the body runs past its document.';
    }
    return;
}

/** The byte size of a BSON value of `elementType` at `offset`, checked against `end`; a problem if it does not fit. */
function bsonValueSize(buffer: Uint8Array, elementType: number, offset: number, end: number, depth: number): number | FrameProblem {
    const left = end - offset;
    switch (elementType) {
        case 0x01: // double
        case 0x09: // UTC date
        case 0x11: // timestamp
        case 0x12: // int64
            return 8;
        case 0x10: // int32
            return 4;
        case 0x08: // boolean
            return 1;
        case 0x06: // undefined
        case 0x0A: // null
        case 0x7F: // max key
        case 0xFF: // min key
            return 0;
        case 0x07: // ObjectId
            return 12;
        case 0x13: // decimal128
            return 16;
        case 0x02: // string
        case 0x0D: // JavaScript code
        case 0x0E: { // symbol
            if (left < 4) return 'A BSON string in the body ends inside its length.';
            const length = readInt32(buffer, offset);
            if (length < 1 || length > left - 4) return `A BSON string in the body claims ${length} bytes; ${left - 4} are there.`;
            if (buffer[offset + 4 + length - 1] !== 0) return 'A BSON string in the body is not terminated.';
            return 4 + length;
        }
        case 0x03: // document
        case 0x04: { // array
            const problem = checkBsonDocument(buffer, offset, end, depth + 1);
            return problem ?? readInt32(buffer, offset);
        }
        case 0x05: { // binary
            if (left < 5) return 'A BSON binary in the body ends inside its header.';
            const length = readInt32(buffer, offset);
            if (length < 0 || length > left - 5) return `A BSON binary in the body claims ${length} bytes; ${left - 5} are there.`;
            return 5 + length;
        }
        case 0x0B: { // regular expression: two C strings
            let position = offset;
            for (let part = 0; part < 2; part++) {
                while (position < end && buffer[position] !== 0) position++;
                if (position >= end) return 'A BSON regular expression in the body is not terminated.';
                position++;
            }
            return position - offset;
        }
        default:
            return `Unknown BSON element type 0x${elementType.toString(16)} in the body.`;
    }
}
