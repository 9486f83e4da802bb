import { Observable, Subject } from 'rxjs';
import { ParticipantState } from '@switchboard/protocol';
import { FeatureContext } from '../../feature';
import { RunOptions, TransactionCoordinator, TransactionResult } from './transaction-coordinator';
import { Participation } from './transaction-entities';
import { TransactionEvent, TransactionHandler } from './transaction-handler';
import { TransactionParticipant } from './transaction-participant';

export interface TransactionOptions {
    /** Default `timeoutMs` of `run`: for the votes, and again for delivering the decision. */
    timeoutMs: number;
    /** How often a participant in doubt asks again for the outcome (besides each time a peer comes online). */
    inDoubtRetryMs: number;
    /**
     * How long finished transactions are remembered (running an ID again within it answers the same outcome and
     * runs nothing); pruned after each registration. Transactions in doubt or not acknowledged are always kept.
     */
    retentionMs: number;
}

export const defaultTransactionOptions: TransactionOptions = { timeoutMs: 10_000, inDoubtRetryMs: 10_000, retentionMs: 7 * 24 * 3600_000 };

/**
 * `peer.features.transactions`: two-phase commit among peers.
 *
 * ```ts
 * bob.features.transactions.handle<Transfer>('transfer', { prepare: t => reserve(t.data), commit: t => book(t.data), abort: t => release(t.data) });
 * const result = await alice.features.transactions.run({ participants: ['bob', 'carol'], operation: 'transfer', data, timeoutMs: 5000 });
 * result.outcome; // 'committed' | 'aborted'; result.participants: each one's vote and state
 * ```
 */
export class Transactions {
    protected readonly eventsSubject = new Subject<TransactionEvent>();
    /** Each state a transaction reached here, once it is persisted. */
    readonly events$: Observable<TransactionEvent> = this.eventsSubject.asObservable();
    readonly coordinator: TransactionCoordinator;
    readonly participant: TransactionParticipant;
    protected retryTimer?: ReturnType<typeof setInterval>;
    protected closed = false;

    constructor(protected context: FeatureContext, protected options: TransactionOptions = defaultTransactionOptions) {
        this.participant = new TransactionParticipant(context, this.eventsSubject, options.timeoutMs);
        this.coordinator = new TransactionCoordinator(context, this.participant, this.eventsSubject, options.timeoutMs);
    }

    /** Runs a transaction with this peer as its coordinator (see RunOptions and TransactionResult). */
    run<T>(options: RunOptions<T>): Promise<TransactionResult> {
        return this.coordinator.run(options);
    }

    /** How this peer takes part in `operation` when a coordinator runs it. Register handlers before `start()`. */
    handle<T>(operation: string, handler: TransactionHandler<T>): void {
        this.participant.handle(operation, handler);
    }

    /** This peer's state as a participant in `coordinator`'s transaction `id`. */
    stateOf(coordinator: string, id: string): Promise<ParticipantState> {
        return this.participant.stateOf(coordinator, id);
    }

    /** Transactions this peer voted yes in and has not learned the outcome of. */
    inDoubt(): Promise<Participation[]> {
        return this.participant.inDoubt();
    }

    // ---- lifecycle (wired by the feature) -------------------------------------------------------------------

    async registered(): Promise<void> {
        this.startRetries();
        const before = new Date(this.context.clock() - this.options.retentionMs);
        await Promise.all([this.coordinator.prune(before), this.participant.prune(before)]);
        await Promise.all([this.coordinator.recover(), this.participant.resolveInDoubt()]);
    }

    peerOnline(peerId: string): Promise<void> {
        return Promise.all([this.coordinator.recover(peerId), this.participant.resolveInDoubt()]).then(() => undefined);
    }

    /**
     * Stops asking for outcomes. Handlers still running are not waited for (an app's handler may never end); the
     * peer's storage waits for the writes already started. What was not persisted is finished after the next start.
     */
    close(): void {
        this.closed = true;
        clearInterval(this.retryTimer);
    }

    protected startRetries(): void {
        if (this.retryTimer || this.closed) return;
        this.retryTimer = setInterval(() => {
            if (this.context.peer.state === 'registered') this.context.inBackground(this.participant.resolveInDoubt());
        }, this.options.inDoubtRetryMs);
        this.retryTimer.unref?.();
    }
}
