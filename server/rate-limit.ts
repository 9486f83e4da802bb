import { loopClock } from './loop-clock';

/**
 * A token bucket: `perSecond` refill, bursts up to the same number. It refills by the loop clock, not wall time, so a
 * stall of the broker's event loop (the very thing a flood tries to cause) does not refill it.
 */
export class TokenBucket {
    protected tokens: number;
    protected last = loopClock.now();

    constructor(protected perSecond: number) {
        this.tokens = perSecond;
    }

    /** Whether `count` tokens are there, without taking them. */
    has(count: number): boolean {
        this.refill();
        return this.tokens >= count;
    }

    /** Takes `count` tokens if there are that many (a multicast costs one per target). */
    take(count = 1): boolean {
        if (!this.has(count)) return false;
        this.tokens -= count;
        return true;
    }

    protected refill(): void {
        const now = loopClock.now();
        this.tokens = Math.min(this.perSecond, this.tokens + (now - this.last) * this.perSecond / 1000);
        this.last = now;
    }
}

/**
 * What one connection may make the broker send each second: frames and bytes, both charged before any work is done.
 * A multicast is charged for every copy it asks for (targets × copy size), so one frame cannot buy more work than a
 * second's budget.
 */
export class SendBudget {
    protected frames: TokenBucket;
    protected bytes: TokenBucket;

    constructor(readonly framesPerSecond: number, readonly bytesPerSecond: number) {
        this.frames = new TokenBucket(framesPerSecond);
        this.bytes = new TokenBucket(bytesPerSecond);
    }

    /** Takes `frames` frames and `bytes` bytes, or nothing when either is short. */
    take(frames: number, bytes: number): boolean {
        if (!this.frames.has(frames) || !this.bytes.has(bytes)) return false;
        this.frames.take(frames);
        this.bytes.take(bytes);
        return true;
    }
}
