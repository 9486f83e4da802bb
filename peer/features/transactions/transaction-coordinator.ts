import { Subject } from 'rxjs';
import { AccessDenied, MalformedMessage, assertValidPeerId, MAX_PARTICIPANTS, MAX_TRANSACTION_DATA, ParticipantState, PrepareRequest, TRANSACTION_ID_PATTERN, TransactionOutcome, TransactionsApi, Vote } from '@switchboard/protocol';
import { FeatureContext } from '../../feature';
import { KeyedLock } from './keyed-lock';
import { CoordinatedTransaction, RecordedVote } from './transaction-entities';
import { TransactionEvent } from './transaction-handler';
import { TransactionParticipant } from './transaction-participant';

export interface RunOptions<T = unknown> {
    /** Default: a new UUID. Running an ID again answers the first run's outcome and runs no handler twice. */
    id?: string;
    /** The peers that must all vote yes (this peer may be one of them). */
    participants: string[];
    operation: string;
    /** Sent to every participant's handlers as JSON. */
    data?: T;
    /** Milliseconds for the votes (then missing votes abort) and, again, for delivering the decision. */
    timeoutMs?: number;
}

export interface ParticipantResult {
    peerId: string;
    /** `none`: no vote arrived within the timeout (or the peer could not be reached). */
    vote: RecordedVote;
    /** The state the participant acknowledged; `pending` until the decision reached it (it is re-sent until then). */
    state: ParticipantState;
}

export interface TransactionResult {
    id: string;
    outcome: TransactionOutcome;
    participants: ParticipantResult[];
}

/**
 * This peer as a coordinator: persists the transaction, collects votes until the timeout (an early no or a missing
 * vote aborts), persists the decision before anyone hears it, then delivers it — now, and again whenever a
 * participant that has not acknowledged it comes online or this peer registers again.
 */
export class TransactionCoordinator {
    protected running = new Map<string, Promise<TransactionResult>>();
    protected lock = new KeyedLock();

    constructor(
        protected context: FeatureContext,
        protected participant: TransactionParticipant,
        protected events$: Subject<TransactionEvent>,
        protected defaultTimeoutMs: number,
    ) {
    }

    get peerId(): string {
        return this.context.peer.id;
    }

    run<T>(options: RunOptions<T>): Promise<TransactionResult> {
        // The platform's Web Crypto (Node 20 and browsers alike).
        const id = options.id ?? globalThis.crypto.randomUUID();
        let running = this.running.get(id);
        if (!running) {
            running = this.coordinate(id, options).finally(() => this.running.delete(id));
            this.running.set(id, running);
        }
        return running;
    }

    /** The outcome as this coordinator knows it, for a participant in doubt. */
    answerOutcome(asker: string, id: string): Promise<ParticipantState> {
        return this.lock.run(id, async () => {
            const record = await this.load(id);
            if (!record) return 'unknown';
            if (!record.participants.includes(asker)) throw new AccessDenied('Only participants of a transaction may ask for its outcome.', 'not-a-participant');
            if (record.state !== 'preparing') return record.state;
            // Undecided and not running: this peer stopped before deciding. Presumed abort.
            if (!this.running.has(id)) return this.decide(record, 'aborted');
            return 'pending';
        });
    }

    /**
     * After a restart: transactions left undecided are aborted (presumed abort), and decisions not acknowledged by
     * every participant are delivered again (in the background; participants that are offline get them later).
     */
    async recover(onlyFor?: string): Promise<void> {
        const records = await this.context.database.query(CoordinatedTransaction).find();
        for (const record of records) {
            if (this.running.has(record.id)) continue;
            const waiting = record.participants.filter(peerId => !isFinal(record.acknowledged[peerId]));
            if (record.state !== 'preparing' && !waiting.length) continue;
            if (onlyFor && !waiting.includes(onlyFor)) continue;
            this.context.inBackground(this.run({ id: record.id, participants: record.participants, operation: record.operation }));
        }
    }

    /** Forgets transactions decided before `before` that every participant acknowledged. */
    async prune(before: Date): Promise<void> {
        const old = await this.context.database.query(CoordinatedTransaction).filter({ state: { $ne: 'preparing' }, createdAt: { $lt: before } }).find();
        const finished = old.filter(record => !this.running.has(record.id) && record.participants.every(peerId => isFinal(record.acknowledged[peerId])));
        if (!finished.length) return;
        await this.context.database.write(async session => {
            await session.query(CoordinatedTransaction).filter({ id: { $in: finished.map(record => record.id) } }).deleteMany();
        });
    }

    async idle(): Promise<void> {
        await Promise.allSettled([...this.running.values()]);
    }

    // ---- internals --------------------------------------------------------------------------------------------

    protected async coordinate<T>(id: string, options: RunOptions<T>): Promise<TransactionResult> {
        const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
        let record = await this.load(id);
        if (!record) {
            record = new CoordinatedTransaction(id, options.operation, checkedParticipants(options.participants), checkedData(options.data));
            record.createdAt = new Date(this.context.clock());
            if (!TRANSACTION_ID_PATTERN.test(id)) throw new MalformedMessage(`Invalid transaction ID ${JSON.stringify(id).slice(0, 140)}: 1 to 128 letters, digits, ".", "_", ":" or "-".`);
            if (!options.operation || options.operation.length > 128) throw new MalformedMessage('A transaction needs an operation name of 1 to 128 characters.');
            await this.save(record);
            record.votes = await this.collectVotes(record, timeoutMs);
            const commit = record.participants.every(peerId => record!.votes[peerId] === 'yes');
            await this.lock.run(id, () => this.decide(record!, commit ? 'committed' : 'aborted'));
        } else if (record.state === 'preparing') {
            // Left undecided by an earlier life of this peer: nobody can have been told to commit. Presumed abort.
            await this.lock.run(id, () => this.decide(record!, 'aborted'));
        }
        await this.deliver(record, timeoutMs);
        return resultOf(record);
    }

    /** Persists the decision, then announces it (before any participant hears it). */
    protected async decide(record: CoordinatedTransaction, outcome: TransactionOutcome): Promise<TransactionOutcome> {
        record.state = outcome;
        record.decidedAt = new Date(this.context.clock());
        await this.save(record);
        this.events$.next({ role: 'coordinator', id: record.id, coordinator: this.context.peer.id, state: outcome });
        return outcome;
    }

    /** Every participant's vote; one that is not yes ends the wait at once (the outcome is abort whatever follows). */
    protected collectVotes(record: CoordinatedTransaction, timeoutMs: number): Promise<Record<string, RecordedVote>> {
        const votes: Record<string, RecordedVote> = Object.fromEntries(record.participants.map(peerId => [peerId, 'none']));
        const request: PrepareRequest = { id: record.id, operation: record.operation, data: record.data, participants: record.participants };
        return new Promise(resolve => {
            let waiting = record.participants.length;
            const done = () => {
                clearTimeout(timer);
                resolve({ ...votes });
            };
            const timer = setTimeout(done, timeoutMs);
            for (const peerId of record.participants) {
                this.prepareOne(peerId, request, timeoutMs).then(vote => {
                    votes[peerId] = vote;
                    if (vote !== 'yes' || --waiting === 0) done();
                }, () => done());
            }
        });
    }

    protected async prepareOne(peerId: string, request: PrepareRequest, timeoutMs: number): Promise<Vote> {
        if (peerId === this.context.peer.id) return this.participant.prepare(peerId, request);
        // Not retried: an unreachable participant is a missing vote, which aborts at once instead of at the timeout.
        return this.remote(peerId, timeoutMs).prepare(request);
    }

    /** Sends the decision to each participant that has not acknowledged it; those it does not reach get it later. */
    protected async deliver(record: CoordinatedTransaction, timeoutMs: number): Promise<void> {
        const outcome = record.state as TransactionOutcome;
        const waiting = record.participants.filter(peerId => !isFinal(record.acknowledged[peerId]));
        if (!waiting.length) return;
        const states = await Promise.all(waiting.map(async peerId => {
            try {
                const state = peerId === this.context.peer.id
                    ? await this.participant.decide(peerId, record.id, outcome)
                    : await this.remote(peerId, timeoutMs, ['decide']).decide(record.id, outcome);
                return [peerId, state] as const;
            } catch {
                return [peerId, undefined] as const;
            }
        }));
        let changed = false;
        for (const [peerId, state] of states) {
            // `unknown`: the participant never prepared (it did not vote yes), so for an abort there is nothing to undo.
            const acknowledged = state === 'unknown' && outcome === 'aborted' ? 'aborted' : state;
            if (isFinal(acknowledged)) {
                record.acknowledged[peerId] = acknowledged;
                changed = true;
            }
        }
        if (changed) {
            record.acknowledged = { ...record.acknowledged };
            // Off the caller's path: a lost acknowledgement only makes a restarted coordinator send the decision
            // again, which the participant answers from its record.
            this.context.inBackground(this.save(record));
        }
    }

    protected remote(peerId: string, timeoutMs: number, idempotent: string[] = []) {
        return this.context.peer.to(peerId).controller<TransactionsApi>(TransactionsApi, { timeout: timeoutMs, idempotent });
    }

    protected load(id: string): Promise<CoordinatedTransaction | undefined> {
        return this.context.database.query(CoordinatedTransaction).filter({ id }).findOneOrUndefined();
    }

    protected save(record: CoordinatedTransaction): Promise<void> {
        return this.context.database.write(async session => void session.add(record));
    }
}

function isFinal(state: ParticipantState | undefined): state is 'committed' | 'aborted' {
    return state === 'committed' || state === 'aborted';
}

function resultOf(record: CoordinatedTransaction): TransactionResult {
    return {
        id: record.id,
        outcome: record.state as TransactionOutcome,
        participants: record.participants.map(peerId => ({ peerId, vote: record.votes[peerId] ?? 'none', state: record.acknowledged[peerId] ?? 'pending' })),
    };
}

function checkedParticipants(participants: string[]): string[] {
    const unique = [...new Set(participants)];
    if (!unique.length || unique.length > MAX_PARTICIPANTS) throw new MalformedMessage(`A transaction needs 1 to ${MAX_PARTICIPANTS} participants.`);
    for (const peerId of unique) assertValidPeerId(peerId);
    return unique;
}

function checkedData(data: unknown): string {
    const json = data === undefined ? '' : JSON.stringify(data);
    if (json.length > MAX_TRANSACTION_DATA) throw new MalformedMessage(`Transaction data is limited to ${MAX_TRANSACTION_DATA} characters of JSON; this is ${json.length}.`);
    return json;
}
