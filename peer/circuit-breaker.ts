import { CircuitOpen } from '@switchboard/protocol';

export interface CircuitBreakerOptions {
    /** Consecutive failures that open the circuit. */
    failureThreshold: number;
    /** How long it stays open before one trial call may pass (half-open). */
    coolDownMs: number;
}

export const defaultCircuitBreaker: CircuitBreakerOptions = { failureThreshold: 5, coolDownMs: 10_000 };

export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * One per target peer. Closed: calls pass. After `failureThreshold` consecutive failures it opens: calls fail at
 * once with CircuitOpen. After `coolDownMs` it lets one trial call through (half-open): success closes it, failure
 * opens it again.
 */
export class CircuitBreaker {
    protected failures = 0;
    protected openedAt = 0;
    protected trialInFlight = false;
    /** Advances with every reset: a call that entered before the last reset cannot count against the target. */
    protected epoch = 0;
    state: CircuitState = 'closed';

    constructor(readonly peerId: string, protected options: CircuitBreakerOptions = defaultCircuitBreaker, protected now: () => number = Date.now) {
    }

    /**
     * Returns the epoch to hand back to `failure()`.
     * @throws CircuitOpen when the call must not be attempted.
     */
    enter(): number {
        if (this.state === 'closed') return this.epoch;
        const retryAt = this.openedAt + this.options.coolDownMs;
        if (this.state === 'open' && this.now() >= retryAt) this.state = 'half-open';
        if (this.state === 'half-open' && !this.trialInFlight) {
            this.trialInFlight = true;
            return this.epoch;
        }
        throw new CircuitOpen(
            `Calls to peer "${this.peerId}" are paused after ${this.failures} consecutive failures; the next try is allowed at ${new Date(retryAt).toISOString()}.`,
            this.peerId, new Date(retryAt),
        );
    }

    success(): void {
        this.failures = 0;
        this.trialInFlight = false;
        this.state = 'closed';
    }

    /**
     * A failure of the target, for a call that entered at `epoch`. A call older than the last reset (the target came
     * back meanwhile, e.g. on another broker) failed for what happened before: it says nothing about the target now.
     */
    failure(epoch: number = this.epoch): void {
        if (epoch !== this.epoch) return;
        this.failures++;
        this.trialInFlight = false;
        if (this.state === 'half-open' || this.failures >= this.options.failureThreshold) {
            this.state = 'open';
            this.openedAt = this.now();
        }
    }

    /** New evidence that the target is reachable (the broker reports it online): start afresh. */
    reset(): void {
        this.epoch++;
        this.success();
    }

    /** A call that ended in a way that says nothing about the target (e.g. the caller's own bad arguments). */
    neutral(): void {
        this.trialInFlight = false;
    }
}
