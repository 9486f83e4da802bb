/** A token bucket: `perSecond` refill, bursts up to the same number. */
export class TokenBucket {
    protected tokens: number;
    protected last = performance.now();

    constructor(protected perSecond: number) {
        this.tokens = perSecond;
    }

    /** Takes `count` tokens if there are that many (a multicast costs one per target). */
    take(count = 1): boolean {
        const now = performance.now();
        this.tokens = Math.min(this.perSecond, this.tokens + (now - this.last) * this.perSecond / 1000);
        this.last = now;
        if (this.tokens < count) return false;
        this.tokens -= count;
        return true;
    }
}
