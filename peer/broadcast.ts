import { MulticastOutcome } from '@switchboard/protocol/internal';

export interface BroadcastOptions {
    /** Milliseconds for the whole broadcast (the broker's answer, and the replies when collected); default: the peer's `callTimeoutMs`. */
    timeout?: number;
    /** Wait for each delivered or forwarded target's answer and return it in `replies`; otherwise fire and forget. */
    collectReplies?: boolean;
}

/** What one target answered, when replies are collected. */
export type BroadcastReply<R> = { result: R } | { error: Error };

export interface BroadcastResult<R = unknown> {
    /** Targets whose connection the broker wrote the call to. */
    delivered: number;
    /** Targets on another broker of a cluster: the call was handed to that broker (its answer comes as a reply). */
    forwarded: number;
    /** Targets it did not reach: offline, unknown, refused by the send policy, or out of the cluster's reach. */
    failed: number;
    /** Each target's outcome, as the broker decided it. */
    outcomes: Record<string, MulticastOutcome>;
    /** With `collectReplies`: each delivered target's answer (a target that did not answer in time has a Timeout). */
    replies?: Record<string, BroadcastReply<R>>;
}

/** Counts and per-target outcomes from the broker's answer, in target order. */
export function summarize<R>(targets: readonly string[], outcomes: readonly MulticastOutcome[]): BroadcastResult<R> {
    const result: BroadcastResult<R> = { delivered: 0, forwarded: 0, failed: 0, outcomes: {} };
    targets.forEach((target, i) => {
        const outcome = outcomes[i] ?? 'not-found';
        // A target named twice got one copy; its first mention carries the outcome.
        if (outcome === 'duplicate') return;
        result.outcomes[target] = outcome;
        if (outcome === 'delivered') result.delivered++;
        else if (outcome === 'forwarded') result.forwarded++;
        else result.failed++;
    });
    return result;
}
