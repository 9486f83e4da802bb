import { RpcTypes } from '@deepkit/rpc';
import { FrameHeader, inspectFrame, readUint32, BROKER_ONLY_FRAMES, Route, afterIoCallbacks } from '@switchboard/protocol/internal';

/** What one record on the channel carries: its first byte. */
export const LinkMessage = { proof: 0, call: 1, reply: 2 } as const;
export type LinkMessageKind = typeof LinkMessage[keyof typeof LinkMessage];
/** Set in the first byte of every piece of a message but the last. */
const MORE = 0x80;
/** A record: kind (u8), length (u32), bytes. */
const RECORD_HEADER = 5;
/**
 * A message is sent in pieces of at most this many bytes, and a data-channel message holds at most about 64 KiB:
 * SCTP implementations differ in the largest message they take (256 KiB in libwebrtc, less in some browsers), and
 * small pieces keep one big answer from holding up the rest.
 */
const PIECE_BYTES = 60 * 1024;
const CHANNEL_MESSAGE_BYTES = 64 * 1024;
/**
 * When queued records leave: after the I/O callbacks of this turn of the event loop, so the frames of one turn
 * share one data-channel message (each message costs a crossing into the WebRTC thread: about 5,000 a second in
 * Node's WebRTC, whatever their size).
 */
const schedule = afterIoCallbacks;

/** The limits of the broker's gate, applied by the receiving side of a link to everything the other side sends. */
export interface LinkLimits {
    /** Largest frame, in bytes (the broker's maxPayloadBytes). */
    maxFrameBytes: number;
    /** Frames the other side may send per second (burst of the same size). */
    framesPerSecond: number;
    /** Bytes the other side may send per second (burst of the same size). */
    bytesPerSecond: number;
}

export const defaultLinkLimits: LinkLimits = { maxFrameBytes: 16 * 1024 * 1024, framesPerSecond: 10_000, bytesPerSecond: 64 * 1024 * 1024 };

export interface LinkChannelHandlers {
    /** A whole message; for frames, `type` is the frame's RPC type. */
    message(kind: LinkMessageKind, bytes: Uint8Array, type: number): void;
    /** A call over the frame rate: answered with RateLimited, as the broker would, and not run. */
    limited(id: number, framesPerSecond: number): void;
    /** The other side broke a limit or sent something malformed: the link must close. */
    refused(reason: string): void;
}

/** A token bucket on the monotonic clock: `perSecond` refill, bursts up to the same number. */
class Budget {
    protected tokens: number;
    protected last = performance.now();

    constructor(protected perSecond: number) {
        this.tokens = perSecond;
    }

    take(count: number): boolean {
        const now = performance.now();
        this.tokens = Math.min(this.perSecond, this.tokens + (now - this.last) * this.perSecond / 1000);
        this.last = now;
        if (this.tokens < count) return false;
        this.tokens -= count;
        return true;
    }
}

/**
 * One data channel as the link uses it: messages of a kind (proof, call frame, reply frame) split into pieces and
 * put back together, and the broker's gate on every frame that arrives: size, rate, whole-frame validation
 * (shared/frame-check.ts), the client route only (no peer route, so no source or destination a frame could
 * claim), and no frame type that only the broker may write.
 */
export class LinkChannel {
    protected partial?: { kind: number, pieces: Uint8Array[], bytes: number };
    protected frames: Budget;
    protected bytes: Budget;
    protected queued: [number, Uint8Array][] = [];
    protected queuedBytes = 0;
    protected scheduled = false;
    protected stopped = false;
    /** Kept from the channel's events: reading `readyState` crosses into WebRTC's thread (a fifth of a call's CPU). */
    protected channelOpen = false;

    constructor(protected channel: RTCDataChannel, protected limits: LinkLimits, protected handlers: LinkChannelHandlers) {
        this.frames = new Budget(limits.framesPerSecond);
        this.bytes = new Budget(limits.bytesPerSecond);
        channel.binaryType = 'arraybuffer';
        channel.addEventListener('open', () => this.channelOpen = true);
        channel.addEventListener('close', () => this.channelOpen = false);
        channel.addEventListener('message', event => this.received(event.data));
    }

    get bufferedAmount(): number {
        return this.channel.bufferedAmount + this.queuedBytes;
    }

    get open(): boolean {
        return !this.stopped && this.channelOpen;
    }

    /** Queues a message; it leaves with the others of this turn of the event loop. */
    send(kind: LinkMessageKind, bytes: Uint8Array): void {
        let offset = 0;
        do {
            const end = Math.min(bytes.byteLength, offset + PIECE_BYTES);
            const piece = bytes.subarray(offset, end);
            if (this.queuedBytes + RECORD_HEADER + piece.byteLength > CHANNEL_MESSAGE_BYTES) this.flush();
            this.queued.push([end < bytes.byteLength ? kind | MORE : kind, piece]);
            this.queuedBytes += RECORD_HEADER + piece.byteLength;
            offset = end;
        } while (offset < bytes.byteLength);
        if (!this.scheduled) {
            this.scheduled = true;
            schedule(this.flush);
        }
    }

    /** Sends what is queued; throws when the channel cannot take it (its buffer is full, it is closing). */
    readonly flush = (): void => {
        this.scheduled = false;
        if (!this.queued.length || this.stopped) return;
        const message = new Uint8Array(this.queuedBytes);
        const view = new DataView(message.buffer);
        let offset = 0;
        for (const [head, piece] of this.queued) {
            message[offset] = head;
            view.setUint32(offset + 1, piece.byteLength, true);
            message.set(piece, offset + RECORD_HEADER);
            offset += RECORD_HEADER + piece.byteLength;
        }
        this.queued = [];
        this.queuedBytes = 0;
        try {
            this.channel.send(message);
        } catch (error) {
            this.handlers.refused(`could not send: ${error instanceof Error ? error.message : error}`);
        }
    };

    /** Nothing more is sent or read (the link closed). */
    stop(): void {
        this.stopped = true;
        this.queued = [];
        this.queuedBytes = 0;
        this.partial = undefined;
    }

    protected received(data: unknown): void {
        if (this.stopped) return;
        if (!(data instanceof ArrayBuffer)) return this.handlers.refused('a data-channel message that is not binary');
        if (!this.bytes.take(data.byteLength)) return this.handlers.refused(`more than ${this.limits.bytesPerSecond} bytes per second`);
        const message = new Uint8Array(data);
        for (let offset = 0; offset < message.byteLength && !this.stopped;) {
            if (message.byteLength - offset < RECORD_HEADER) return this.handlers.refused('a record cut short in its header');
            const head = message[offset];
            const length = readUint32(message, offset + 1);
            offset += RECORD_HEADER;
            if (length > message.byteLength - offset) return this.handlers.refused(`a record of ${length} bytes with ${message.byteLength - offset} left`);
            this.record(head, message.subarray(offset, offset + length));
            offset += length;
        }
    }

    protected record(head: number, piece: Uint8Array): void {
        const kind = head & ~MORE;
        if (kind !== LinkMessage.proof && kind !== LinkMessage.call && kind !== LinkMessage.reply) return this.handlers.refused(`unknown message kind ${kind}`);
        const partial = this.partial ??= { kind, pieces: [], bytes: 0 };
        if (partial.kind !== kind) return this.handlers.refused('pieces of two messages interleaved');
        partial.bytes += piece.byteLength;
        if (partial.bytes > this.limits.maxFrameBytes) return this.handlers.refused(`a message larger than ${this.limits.maxFrameBytes} bytes`);
        partial.pieces.push(piece);
        if (head & MORE) return;
        this.partial = undefined;
        const whole = partial.pieces.length === 1 ? partial.pieces[0] : concat(partial.pieces, partial.bytes);
        if (kind === LinkMessage.proof) return this.handlers.message(kind, whole, -1);
        const header = checkedFrame(whole);
        if (typeof header === 'string') return this.handlers.refused(header);
        if (!this.frames.take(1)) {
            // A call can be refused on its own; any other frame over the rate (a reply nobody asked for …) ends the link.
            if (kind === LinkMessage.call && (header.type === RpcTypes.Action || header.type === RpcTypes.ActionType)) {
                return this.handlers.limited(header.id, this.limits.framesPerSecond);
            }
            return this.handlers.refused(`more than ${this.limits.framesPerSecond} frames per second`);
        }
        this.handlers.message(kind as LinkMessageKind, whole, header.type);
    }
}

/** The frame's header, or why it may not pass the link. */
export function checkedFrame(frame: Uint8Array): FrameHeader | string {
    const header = inspectFrame(frame);
    if (typeof header === 'string') return header;
    if (header.route !== Route.client) return `a frame on route ${header.route} (a link carries the client route only)`;
    if (BROKER_ONLY_FRAMES.has(header.type)) return `frame type ${header.type}, which only the broker writes`;
    // Both sides write whole frames (Deepkit's chunking is off on a link): a chunk would be reassembled unchecked.
    if (header.type === RpcTypes.Chunk || header.type === RpcTypes.ChunkAck) return 'a chunk frame (links carry whole frames)';
    return header;
}

function concat(pieces: Uint8Array[], bytes: number): Uint8Array {
    const whole = new Uint8Array(bytes);
    let offset = 0;
    for (const piece of pieces) {
        whole.set(piece, offset);
        offset += piece.byteLength;
    }
    return whole;
}
