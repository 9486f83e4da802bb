import { Timeout } from '@switchboard/protocol';

/** Where a call stood when its deadline passed. */
export type CallStage = 'registration' | 'types' | 'action';

/**
 * One deadline per call, shared by every stage: waiting for this peer's own registration, loading the action's
 * types, the action, and retries of idempotent calls. Each stage gets only what is left, so a call ends within its
 * timeout however many stages it passes through (a fresh timeout per stage made calls end up to twice as late).
 *
 * The timer is made only when a stage must be raced (`within`); a call that is ready at once uses the per-message
 * timer of its action alone, created in the same tick with the whole remaining time.
 */
export class CallDeadline {
    readonly startedAt = performance.now();
    protected expiry?: Promise<never>;
    protected timer?: ReturnType<typeof setTimeout>;
    protected stage: CallStage = 'registration';

    constructor(readonly timeoutMs: number, protected target: string) {
    }

    /** Milliseconds left, rounded up, so a per-message timer given this never fires before the deadline. */
    remainingMs(): number {
        return Math.max(0, Math.ceil(this.timeoutMs - (performance.now() - this.startedAt)));
    }

    /**
     * Whether the deadline has passed. Node fires a timer up to a millisecond early against `performance.now()` (its
     * clock is read in whole milliseconds), hence the slack.
     */
    passed(): boolean {
        return this.timeoutMs - (performance.now() - this.startedAt) <= 1;
    }

    /** `work`, or Timeout when the deadline passes first. */
    within<T>(stage: CallStage, work: Promise<T>): Promise<T> {
        this.stage = stage;
        if (!this.expiry) {
            this.expiry = new Promise<never>((resolve, reject) => {
                this.timer = setTimeout(() => reject(this.timeout()), this.remainingMs());
            });
            // Only a race that is still running observes the rejection.
            this.expiry.catch(() => undefined);
        }
        return Promise.race([work, this.expiry]);
    }

    /**
     * `work` in `stage`, raced against the deadline only if an earlier stage already made its timer; otherwise the
     * work's own timer, given `remainingMs()`, is the deadline.
     */
    during<T>(stage: CallStage, work: Promise<T>): Promise<T> {
        this.stage = stage;
        return this.expiry ? Promise.race([work, this.expiry]) : work;
    }

    timeout(stage: CallStage = this.stage): Timeout {
        const message = stage === 'registration'
            ? `The call to ${this.target} could not start within ${this.timeoutMs} ms: this peer is not registered with the broker (it keeps reconnecting). Retry later, or queue the message.`
            : `No answer from ${this.target} within ${this.timeoutMs} ms${stage === 'types' ? ' (it did not describe the action)' : ''}. Retry later, or raise the timeout.`;
        return new Timeout(message, this.timeoutMs, stage);
    }

    end(): void {
        clearTimeout(this.timer);
    }
}
