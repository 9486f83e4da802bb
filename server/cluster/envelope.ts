import { MIN_FRAME_SIZE, SOURCE_OFFSET } from '@switchboard/protocol/internal';
import { FrameOrigin } from '../exchange/peer-exchange';

/**
 * The binary format of frames between brokers. One NATS message carries every frame one broker has for another
 * broker in one microtask (a batch); nothing in it is JSON, and no frame is copied but into the batch itself.
 *
 * Batch:    <kind u8 = 1> <sender length u8> <sender broker ID, ASCII> <envelope>*
 * Part:     <kind u8 = 2> <sender length u8> <sender broker ID> <whole batch length u32> <bytes of the batch>
 *           (a batch larger than NATS's max payload travels as consecutive parts; core NATS keeps one publisher's
 *           order to one subscriber, so a receiver assembles one batch per sender at a time)
 * Envelope: <kind u8 = 1 request> <origin> <frame>  |  <kind u8 = 2 reply> <frame>
 * Origin:   <flags u8: 1 typed errors, 2 has peer ID> <peer ID length u8> <peer ID> <session length u16> <session>
 * Frame:    a Deepkit RPC frame, which starts with its own u32 size. The caller's connection is the frame's source
 *           (the broker checked it), and a reply names its destination: neither is repeated.
 */
export const BatchKind = { whole: 1, part: 2 } as const;
/** Batches being reassembled at once (one per sending broker). */
const MAX_ASSEMBLIES = 64;
export const EnvelopeKind = { request: 1, reply: 2 } as const;

const FLAG_TYPED_ERRORS = 1;
const FLAG_PEER_ID = 2;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The origin as an envelope carries it. Connections cache their FrameOrigin, so this runs once per origin object. */
const originHeaders = new WeakMap<FrameOrigin, Uint8Array>();

export function originHeader(origin: FrameOrigin): Uint8Array {
    let header = originHeaders.get(origin);
    if (header) return header;
    const peerId = encoder.encode(origin.peerId ?? '').subarray(0, 255);
    const session = encoder.encode(origin.session).subarray(0, 65535);
    header = new Uint8Array(1 + 1 + peerId.length + 2 + session.length);
    header[0] = (origin.typedErrors ? FLAG_TYPED_ERRORS : 0) | (origin.peerId !== undefined ? FLAG_PEER_ID : 0);
    header[1] = peerId.length;
    header.set(peerId, 2);
    let offset = 2 + peerId.length;
    header[offset] = session.length & 0xff;
    header[offset + 1] = session.length >> 8;
    header.set(session, offset + 2);
    originHeaders.set(origin, header);
    return header;
}

/** Length of the origin at `offset`, or -1 when it does not fit in `end`. */
function originLength(buffer: Uint8Array, offset: number, end: number): number {
    if (offset + 2 > end) return -1;
    const peerLength = buffer[offset + 1];
    const sessionAt = offset + 2 + peerLength;
    if (sessionAt + 2 > end) return -1;
    const length = 2 + peerLength + 2 + (buffer[sessionAt] | buffer[sessionAt + 1] << 8);
    return offset + length > end ? -1 : length;
}

export function decodeOrigin(header: Uint8Array, connectionId: string): FrameOrigin {
    const peerLength = header[1];
    const sessionAt = 2 + peerLength;
    const origin: FrameOrigin = {
        connectionId,
        peerId: header[0] & FLAG_PEER_ID ? decoder.decode(header.subarray(2, sessionAt)) : undefined,
        session: decoder.decode(header.subarray(sessionAt + 2)),
        typedErrors: !!(header[0] & FLAG_TYPED_ERRORS),
    };
    return origin;
}

/**
 * The frames waiting for one destination broker, written into one buffer when flushed. Arrays are kept between
 * flushes: queueing a frame allocates nothing.
 */
export class BatchWriter {
    protected kinds: number[] = [];
    protected origins: (Uint8Array | undefined)[] = [];
    protected frames: Uint8Array[] = [];
    protected size = 0;
    protected readonly senderHeader: Uint8Array;

    constructor(sender: string) {
        const id = encoder.encode(sender);
        this.senderHeader = new Uint8Array(2 + id.length);
        this.senderHeader[0] = BatchKind.whole;
        this.senderHeader[1] = id.length;
        this.senderHeader.set(id, 2);
    }

    get empty(): boolean {
        return this.frames.length === 0;
    }

    get bytes(): number {
        return this.senderHeader.length + this.size;
    }

    request(origin: FrameOrigin, frame: Uint8Array): void {
        const header = originHeader(origin);
        this.kinds.push(EnvelopeKind.request);
        this.origins.push(header);
        this.frames.push(frame);
        this.size += 1 + header.length + frame.byteLength;
    }

    reply(frame: Uint8Array): void {
        this.kinds.push(EnvelopeKind.reply);
        this.origins.push(undefined);
        this.frames.push(frame);
        this.size += 1 + frame.byteLength;
    }

    /** The batch as one buffer; the writer is empty afterwards. */
    take(): Uint8Array {
        const batch = new Uint8Array(this.bytes);
        batch.set(this.senderHeader, 0);
        let offset = this.senderHeader.length;
        for (let i = 0; i < this.frames.length; i++) {
            batch[offset++] = this.kinds[i];
            const origin = this.origins[i];
            if (origin) {
                batch.set(origin, offset);
                offset += origin.length;
            }
            batch.set(this.frames[i], offset);
            offset += this.frames[i].byteLength;
        }
        this.kinds.length = this.origins.length = this.frames.length = 0;
        this.size = 0;
        return batch;
    }
}

/** A batch cut into NATS messages of at most `maxBytes` each (parts), for batches larger than one message. */
export function splitBatch(batch: Uint8Array, maxBytes: number): Uint8Array[] {
    const senderLength = batch[1];
    const headerLength = 2 + senderLength + 4;
    const room = maxBytes - headerLength;
    const parts: Uint8Array[] = [];
    for (let offset = 0; offset < batch.length; offset += room) {
        const slice = batch.subarray(offset, Math.min(batch.length, offset + room));
        const part = new Uint8Array(headerLength + slice.length);
        part[0] = BatchKind.part;
        part.set(batch.subarray(1, 2 + senderLength), 1);
        new DataView(part.buffer).setUint32(2 + senderLength, batch.length, true);
        part.set(slice, headerLength);
        parts.push(part);
    }
    return parts;
}

export interface EnvelopeHandler {
    /** `origin` is the encoded origin (decodeOrigin); `frame` a whole Deepkit frame. */
    request(sender: string, origin: Uint8Array, frame: Uint8Array): void;
    reply(sender: string, frame: Uint8Array): void;
}

/**
 * Reassembles parts (one batch per sender at a time, bounded) and hands each envelope of a whole batch to the
 * handler. Brokers of one cluster trust each other, but a NATS message is still checked before anything is read from
 * it: nothing here throws, and no length is believed without a bound.
 */
export class BatchReader {
    protected assembling = new Map<string, { buffer: Uint8Array, filled: number }>();

    constructor(protected maxBatchBytes: number) {
    }

    /** @returns a problem, or undefined when every envelope was handed on */
    read(message: Uint8Array, handler: EnvelopeHandler): string | undefined {
        if (message.length < 2) return 'batch too short';
        const senderEnd = 2 + message[1];
        if (senderEnd > message.length) return 'sender beyond the message';
        const sender = decoder.decode(message.subarray(2, senderEnd));
        if (message[0] === BatchKind.whole) return this.readWhole(sender, message, senderEnd, handler);
        if (message[0] !== BatchKind.part) return `unknown batch kind ${message[0]}`;
        if (senderEnd + 4 > message.length) return 'part without length';
        const total = new DataView(message.buffer, message.byteOffset + senderEnd, 4).getUint32(0, true);
        if (total > this.maxBatchBytes) return `batch of ${total} bytes is over the bound`;
        let assembly = this.assembling.get(sender);
        if (!assembly || assembly.buffer.length !== total) {
            if (!assembly && this.assembling.size >= MAX_ASSEMBLIES) this.assembling.delete(this.assembling.keys().next().value!);
            assembly = { buffer: new Uint8Array(total), filled: 0 };
            this.assembling.set(sender, assembly);
        }
        const slice = message.subarray(senderEnd + 4);
        if (assembly.filled + slice.length > total) {
            this.assembling.delete(sender);
            return 'parts longer than their batch';
        }
        assembly.buffer.set(slice, assembly.filled);
        assembly.filled += slice.length;
        if (assembly.filled < total) return undefined;
        this.assembling.delete(sender);
        return this.read(assembly.buffer, handler);
    }

    /** A sender that died mid-batch leaves its parts: drop them. */
    forget(sender: string): void {
        this.assembling.delete(sender);
    }

    protected readWhole(sender: string, message: Uint8Array, offset: number, handler: EnvelopeHandler): string | undefined {
        const end = message.length;
        while (offset < end) {
            const kind = message[offset++];
            let origin: Uint8Array | undefined;
            if (kind === EnvelopeKind.request) {
                const length = originLength(message, offset, end);
                if (length < 0) return 'origin beyond the message';
                origin = message.subarray(offset, offset + length);
                offset += length;
            } else if (kind !== EnvelopeKind.reply) {
                return `unknown envelope kind ${kind}`;
            }
            if (offset + 4 > end) return 'frame without size';
            const size = (message[offset] | message[offset + 1] << 8 | message[offset + 2] << 16 | message[offset + 3] << 24) >>> 0;
            if (size < Math.max(MIN_FRAME_SIZE, SOURCE_OFFSET + 16) || size > end - offset) return 'frame size out of bounds';
            const frame = message.subarray(offset, offset + size);
            offset += size;
            if (origin) handler.request(sender, origin, frame);
            else handler.reply(sender, frame);
        }
        return undefined;
    }
}
