import { TrendSample } from '@switchboard/protocol';
import { LatencyWindow, StatsHistory, TREND_SAMPLES } from '../server/stats-history';

function sampleAt(second: number): TrendSample {
    const sample = new TrendSample();
    sample.at = new Date(second * 1000);
    sample.callsPerSecond = second;
    return sample;
}

describe('the broker\'s trend history (the dashboard\'s last 15 minutes)', () => {
    it('keeps the newest 15 minutes of samples, oldest first, however long the broker runs', () => {
        const history = new StatsHistory();
        for (let second = 1; second <= TREND_SAMPLES + 100; second++) history.add(sampleAt(second));
        const samples = history.samples();
        expect(TREND_SAMPLES).toBe(900);
        expect(samples).toHaveLength(TREND_SAMPLES);
        expect(samples[0].callsPerSecond).toBe(101);
        expect(samples[samples.length - 1].callsPerSecond).toBe(TREND_SAMPLES + 100);
        expect(history.samples(new Date((TREND_SAMPLES + 98) * 1000)).map(sample => sample.callsPerSecond)).toEqual([TREND_SAMPLES + 99, TREND_SAMPLES + 100]);
    });

    it('latency percentiles of a second: within the bucket of the true value, 0 without calls', () => {
        const window = new LatencyWindow();
        expect(window.percentile(0.99)).toBe(0);
        for (let call = 0; call < 98; call++) window.observe(3);      // bucket 2.5–5 ms
        window.observe(40);                                               // bucket 25–50 ms
        window.observe(400);                                              // bucket 250–500 ms
        const p50 = window.percentile(0.5);
        const p99 = window.percentile(0.99);
        expect(p50).toBeGreaterThan(2.5);
        expect(p50).toBeLessThanOrEqual(5);
        expect(p99).toBeGreaterThan(25);
        expect(p99).toBeLessThanOrEqual(50);
        window.reset();
        expect(window.percentile(0.5)).toBe(0);
    });
});
