/** A token bucket: `perSecond` refill, bursts up to the same number. */
export class TokenBucket {
    protected tokens: number;
    protected last = performance.now();

    constructor(protected perSecond: number) {
        this.tokens = perSecond;
    }

    take(): boolean {
        const now = performance.now();
        this.tokens = Math.min(this.perSecond, this.tokens + (now - this.last) * this.perSecond / 1000);
        this.last = now;
        if (this.tokens < 1) return false;
        this.tokens -= 1;
        return true;
    }
}
