import { BrokerConfig } from '../config';

/** Room above two of the largest messages, for the small frames (acks, presence, pings) queued around them. */
const HEADROOM_BYTES = 4 * 1024 * 1024;

/**
 * How many bytes may wait unsent on one connection before the broker gives up on its reader. `maxBufferedBytes: 0`
 * means twice the largest message plus 4 MiB, so a file transfer window (16 chunks of 256 KiB) or a message of the
 * largest size never trips it, while a reader that stops reading costs a bounded amount of memory.
 */
export function outgoingBufferLimit(config: BrokerConfig): number {
    return config.maxBufferedBytes || 2 * config.maxPayloadBytes + HEADROOM_BYTES;
}

/**
 * Whether a frame of `size` bytes may be queued behind `unsent` bytes. A reader that has drained everything always
 * gets the next frame, even one above the limit: it is not slow, and the frame was within maxPayloadBytes.
 */
export function fitsOutgoingBuffer(unsent: number, size: number, limit: number): boolean {
    return unsent === 0 || unsent + size <= limit;
}

/**
 * Whether a peer request of `size` bytes may be queued behind `unsent` bytes. Requests leave a reserve below the limit
 * for what cannot be refused (replies, presence, the broker's own frames), which would otherwise close the reader.
 */
export function requestFits(unsent: number, size: number, limit: number): boolean {
    const reserve = Math.min(HEADROOM_BYTES, limit / 4);
    return unsent === 0 || unsent + size <= limit - reserve;
}

/**
 * Tells a slow reader from a burst. A request that does not fit a receiver's buffer is refused to its sender; the
 * receiver is closed only if, `afterMs` after such a refusal, it still has more than half the bound unsent: it is not
 * reading. One that reads drains its buffer within that time and stays.
 */
export class SlowReaderWatch {
    protected timer?: ReturnType<typeof setTimeout>;

    constructor(protected afterMs: number, protected limit: number, protected unsent: () => number, protected onStalled: (unsent: number) => void) {
    }

    /** A write did not fit: look again in `afterMs` (once, however many refusals come meanwhile). */
    refused(): void {
        if (this.timer) return;
        this.timer = setTimeout(() => {
            this.timer = undefined;
            const unsent = this.unsent();
            if (unsent > this.limit / 2) this.onStalled(unsent);
        }, this.afterMs);
        this.timer.unref?.();
    }

    stop(): void {
        clearTimeout(this.timer);
        this.timer = undefined;
    }
}
