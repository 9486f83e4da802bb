export interface BackoffOptions {
    /** First delay, in milliseconds. */
    initialDelayMs: number;
    /** Cap on any delay. */
    maxDelayMs: number;
    /** Growth per attempt. */
    factor: number;
    /** Fraction of each delay drawn at random (0 … 1), so many peers do not reconnect in lockstep. */
    jitter: number;
}

export const defaultBackoff: BackoffOptions = { initialDelayMs: 100, maxDelayMs: 10_000, factor: 2, jitter: 0.5 };

/** Exponential backoff with jitter: the delay before attempt `attempt` (0-based). */
export function backoffDelay(attempt: number, options: BackoffOptions = defaultBackoff, random: () => number = Math.random): number {
    const exponential = Math.min(options.maxDelayMs, options.initialDelayMs * options.factor ** attempt);
    const spread = exponential * options.jitter;
    return Math.round(exponential - spread + random() * spread);
}

/** A delay that a close() can cut short. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise(resolve => {
        if (signal?.aborted) return resolve();
        const timer = setTimeout(done, ms);
        signal?.addEventListener('abort', done, { once: true });

        function done() {
            clearTimeout(timer);
            signal?.removeEventListener('abort', done);
            resolve();
        }
    });
}
