/**
 * Call latencies counted into fixed buckets, in plain numbers: the routing hot path bumps one counter per reply, and
 * `/metrics` reads the counts when scraped (server/metrics.ts), so the metrics library loads only on the first scrape.
 */
export class LatencyHistogram {
    /** Observations at or below each bound (not cumulative); the last slot counts those above every bound. */
    readonly counts: number[];
    sum = 0;
    count = 0;

    /** @param bounds upper bounds in seconds, ascending */
    constructor(readonly bounds: readonly number[]) {
        this.counts = new Array<number>(bounds.length + 1).fill(0);
    }

    observe(seconds: number): void {
        let slot = 0;
        while (slot < this.bounds.length && seconds > this.bounds[slot]) slot++;
        this.counts[slot]++;
        this.sum += seconds;
        this.count++;
    }
}

/** The buckets of `switchboard_call_latency_seconds`. */
export const CALL_LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10] as const;
