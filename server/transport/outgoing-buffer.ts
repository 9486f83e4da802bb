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
