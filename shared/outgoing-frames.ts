import { afterIoCallbacks } from './event-loop-turn';

/** Frames at least this large are sent on their own: copying them into a batch would cost more than a write. */
const SEND_ALONE_BYTES = 64 * 1024;
/** A batch is sent once it holds this many bytes, without waiting for the end of the tick. */
const MAX_BATCH_BYTES = 1024 * 1024;
/** When a batch leaves: see afterIoCallbacks. */
const schedule = afterIoCallbacks;

/**
 * The frames written to one socket in the same turn of the event loop leave as one WebSocket message: one write, one WebSocket frame
 * and (mostly) one TCP segment instead of one each. Receivers split them again: Deepkit's stream reader reads
 * concatenated frames, and the broker and the SDK check each frame of a message on its own. Order is kept.
 * Used on both ends: the broker's sockets and the SDK's connection to the broker (no Node-only calls).
 */
export class OutgoingFrames {
    protected queued: Uint8Array[] = [];
    protected queuedBytes = 0;
    protected scheduled = false;
    /**
     * Whether the last turn wrote at most one frame: then the next turn's first frame leaves at once (a lone call
     * must not wait for the end of the turn) and only the frames that follow it in that turn are batched. Under load
     * (batches of several frames) every frame waits for the batch, so a busy socket makes no extra writes.
     */
    protected quiet = true;

    /**
     * @param sendParts writes one message made of `header` then `body` without joining them (WebSocket fragments):
     * a multicast sends one body to many receivers, each with a header of its own. Without it, parts are joined.
     */
    constructor(protected send: (message: Uint8Array) => void, protected sendParts?: (header: Uint8Array, body: Uint8Array) => void) {
    }

    /** Bytes written but not yet handed to the socket. */
    get pendingBytes(): number {
        return this.queuedBytes;
    }

    push(frame: Uint8Array): void {
        if (frame.byteLength >= SEND_ALONE_BYTES) {
            this.flush();
            return this.send(frame);
        }
        if (!this.scheduled) {
            this.scheduled = true;
            schedule(this.flush);
            if (this.quiet) return this.send(frame);
        }
        this.queued.push(frame);
        this.queuedBytes += frame.byteLength;
        if (this.queuedBytes >= MAX_BATCH_BYTES) this.flush();
    }

    /** One frame written as its header and a body shared with other frames, in order with the rest. */
    pushParts(header: Uint8Array, body: Uint8Array): void {
        const size = header.byteLength + body.byteLength;
        if (size < SEND_ALONE_BYTES || !this.sendParts) return this.push(concat([header, body], size));
        this.flush();
        this.sendParts(header, body);
    }

    readonly flush = (): void => {
        this.scheduled = false;
        const frames = this.queued;
        this.quiet = frames.length <= 1;
        if (!frames.length) return;
        const bytes = this.queuedBytes;
        this.queued = [];
        this.queuedBytes = 0;
        this.send(frames.length === 1 ? frames[0] : concat(frames, bytes));
    };

    /** Forgets what is queued (the socket is closing). */
    clear(): void {
        this.queued = [];
        this.queuedBytes = 0;
    }
}

function concat(frames: Uint8Array[], bytes: number): Uint8Array {
    const message = new Uint8Array(bytes);
    let offset = 0;
    for (const frame of frames) {
        message.set(frame, offset);
        offset += frame.byteLength;
    }
    return message;
}
