import { TrendSample } from '@switchboard/protocol';

/** One sample a second, for the last 15 minutes: what the dashboard plots. */
export const TREND_SAMPLE_MS = 1000;
export const TREND_SAMPLES = 15 * 60;

/** Upper bounds of the latency buckets, in milliseconds (those of `switchboard_call_latency_seconds`). */
export const LATENCY_BUCKETS_MS = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10_000];

/**
 * Call latencies of one sample interval, counted in fixed buckets: constant memory and O(buckets) per call however
 * many calls a second the broker routes. Percentiles are interpolated within a bucket, as Prometheus'
 * `histogram_quantile` does, so they are as exact as the buckets are fine.
 */
export class LatencyWindow {
    protected readonly counts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
    protected total = 0;

    observe(milliseconds: number): void {
        let bucket = 0;
        while (bucket < LATENCY_BUCKETS_MS.length && milliseconds > LATENCY_BUCKETS_MS[bucket]) bucket++;
        this.counts[bucket]++;
        this.total++;
    }

    /** The `quantile` (0–1) of what was observed since the last reset, in ms; 0 when nothing was. */
    percentile(quantile: number): number {
        if (!this.total) return 0;
        const rank = quantile * this.total;
        let below = 0;
        for (let bucket = 0; bucket < this.counts.length; bucket++) {
            const count = this.counts[bucket];
            if (below + count >= rank && count) {
                const lower = bucket === 0 ? 0 : LATENCY_BUCKETS_MS[bucket - 1];
                // Past the last bound there is no upper one: report the last bound, as Prometheus does.
                if (bucket === LATENCY_BUCKETS_MS.length) return lower;
                return lower + (LATENCY_BUCKETS_MS[bucket] - lower) * ((rank - below) / count);
            }
            below += count;
        }
        return LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1];
    }

    reset(): void {
        this.counts.fill(0);
        this.total = 0;
    }
}

/**
 * The broker's recent history, a ring of TREND_SAMPLES samples: the oldest is overwritten, so its memory is fixed
 * whatever the uptime.
 */
export class StatsHistory {
    protected readonly ring: (TrendSample | undefined)[] = new Array(TREND_SAMPLES);
    /** Where the next sample goes. */
    protected next = 0;

    add(sample: TrendSample): void {
        this.ring[this.next] = sample;
        this.next = (this.next + 1) % this.ring.length;
    }

    /** The samples taken after `after` (all if not given), oldest first. */
    samples(after?: Date): TrendSample[] {
        const ordered: TrendSample[] = [];
        for (let offset = 0; offset < this.ring.length; offset++) {
            const sample = this.ring[(this.next + offset) % this.ring.length];
            if (sample && (!after || sample.at > after)) ordered.push(sample);
        }
        return ordered;
    }
}
