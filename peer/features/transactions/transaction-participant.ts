import { Subject } from 'rxjs';
import { AccessDenied, NotFound, ParticipantState, PrepareRequest, TransactionOutcome, TransactionsApi, transactionsIdempotent, Vote } from '@switchboard/protocol';
import { FeatureContext } from '../../feature';
import { KeyedLock } from './keyed-lock';
import { Participation, participationKey } from './transaction-entities';
import { TransactionContext, TransactionEvent, TransactionHandler } from './transaction-handler';

/**
 * This peer as a participant: votes by running the app's `prepare` handler once per transaction, applies the
 * outcome once, persists each before it answers, and finds the outcome of transactions it is in doubt about after a
 * restart (from the coordinator, else from another participant that knows it).
 */
export class TransactionParticipant {
    protected handlers = new Map<string, TransactionHandler<any>>();
    protected lock = new KeyedLock();
    /** Prepares running now, by key: a repeated prepare waits for the same vote. */
    protected preparing = new Map<string, Promise<Vote>>();
    protected resolving?: Promise<void>;

    constructor(protected context: FeatureContext, protected events$: Subject<TransactionEvent>, protected callTimeoutMs: number) {
    }

    handle<T>(operation: string, handler: TransactionHandler<T>): void {
        this.handlers.set(operation, handler);
        // Transactions of this operation left in doubt by a restart can be finished now that there is a handler.
        this.context.inBackground(this.resolveInDoubt());
    }

    async prepare(coordinator: string, request: PrepareRequest): Promise<Vote> {
        const key = participationKey(coordinator, request.id);
        let running = this.preparing.get(key);
        if (!running) {
            running = this.vote(key, coordinator, request).finally(() => this.preparing.delete(key));
            this.preparing.set(key, running);
        }
        return running;
    }

    /** The coordinator's decision: applied once under the transaction's lock, persisted, then acknowledged. */
    decide(coordinator: string, id: string, outcome: TransactionOutcome): Promise<ParticipantState> {
        const key = participationKey(coordinator, id);
        return this.lock.run(key, async () => {
            const record = await this.load(key);
            if (!record) {
                // Never prepared: nothing can commit, nothing to undo. An abort is remembered only while a prepare
                // runs (so it votes no and is undone): remembering every abort would let any peer fill this storage.
                // A prepare that arrives after the abort is in doubt, and asks (the coordinator answers aborted).
                if (outcome === 'committed') return 'unknown';
                if (this.preparing.has(key)) {
                    const aborted = new Participation(key, coordinator, id, '', [], '', 'aborted');
                    aborted.updatedAt = new Date(this.context.clock());
                    await this.save(aborted);
                }
                return 'aborted';
            }
            if (record.state !== 'prepared') return record.state;
            await this.apply(record, outcome);
            return outcome;
        });
    }

    /** What this peer knows of a transaction, for another participant in doubt (only participants may ask). */
    async answerOutcome(asker: string, coordinator: string, id: string): Promise<ParticipantState> {
        const key = participationKey(coordinator, id);
        if (this.preparing.has(key)) return 'pending';
        const record = await this.load(key);
        if (!record) return 'unknown';
        if (!record.participants.includes(asker)) throw new AccessDenied('Only participants of a transaction may ask for its outcome.', 'not-a-participant');
        return record.state;
    }

    /** This peer's state in a transaction of `coordinator`. */
    async stateOf(coordinator: string, id: string): Promise<ParticipantState> {
        const key = participationKey(coordinator, id);
        if (this.preparing.has(key)) return 'pending';
        return (await this.load(key))?.state ?? 'unknown';
    }

    /** Transactions this peer voted yes in whose outcome it does not know yet. */
    inDoubt(): Promise<Participation[]> {
        return this.context.database.query(Participation).filter({ state: 'prepared' }).find();
    }

    /**
     * Asks for the outcome of every transaction in doubt that has a handler, and applies what it learns. Run after
     * each registration, when a peer comes online, when a handler is added, and on a timer while any is in doubt.
     */
    resolveInDoubt(): Promise<void> {
        this.resolving ??= (async () => {
            try {
                for (const record of await this.inDoubt()) {
                    if (!this.handlers.has(record.operation)) continue;
                    const outcome = await this.ask(record);
                    if (outcome) await this.decide(record.coordinator, record.id, outcome);
                }
            } finally {
                this.resolving = undefined;
            }
        })();
        return this.resolving;
    }

    /** Forgets finished transactions last changed before `before` (those in doubt stay). */
    async prune(before: Date): Promise<void> {
        await this.context.database.write(async session => {
            await session.query(Participation).filter({ state: { $ne: 'prepared' }, updatedAt: { $lt: before } }).deleteMany();
        });
    }

    async idle(): Promise<void> {
        await Promise.allSettled([...this.preparing.values()]);
        await this.lock.idle();
    }

    // ---- internals --------------------------------------------------------------------------------------------

    protected async vote(key: string, coordinator: string, request: PrepareRequest): Promise<Vote> {
        const known = await this.load(key);
        if (known) return known.vote ?? 'no';
        const handler = this.handlers.get(request.operation);
        const transaction = this.contextOf(coordinator, request.id, request.operation, request.participants, request.data);
        // Nothing to prepare: no, without a record (a peer must not be able to fill this storage with refusals).
        if (!handler || !transaction) return 'no';
        let vote: Vote = 'no';
        try {
            vote = await handler.prepare(transaction) === true ? 'yes' : 'no';
        } catch (error) {
            this.context.peer.errors$.next(error as Error);
        }
        return this.lock.run(key, async () => {
            const aborted = await this.load(key);
            if (aborted) {
                // The coordinator decided abort while the handler prepared (its vote came too late).
                if (vote === 'yes') await this.run(() => handler.abort(transaction));
                return 'no';
            }
            const record = new Participation(key, coordinator, request.id, request.operation, request.participants, request.data, vote === 'yes' ? 'prepared' : 'aborted');
            record.vote = vote;
            record.updatedAt = new Date(this.context.clock());
            await this.save(record);
            this.events$.next({ role: 'participant', id: request.id, coordinator, state: record.state });
            return vote;
        });
    }

    /** Runs the handler for the outcome, then records it: a crash between the two runs the handler again. */
    protected async apply(record: Participation, outcome: TransactionOutcome): Promise<void> {
        const handler = this.handlers.get(record.operation);
        if (!handler) throw new NotFound(`No handler for operation "${record.operation}" is registered yet on this peer; the outcome is applied once it is.`, 'transaction-handler');
        const transaction = this.contextOf(record.coordinator, record.id, record.operation, record.participants, record.data);
        if (transaction) await (outcome === 'committed' ? handler.commit(transaction) : handler.abort(transaction));
        record.state = outcome;
        record.updatedAt = new Date(this.context.clock());
        await this.save(record);
        this.events$.next({ role: 'participant', id: record.id, coordinator: record.coordinator, state: outcome });
    }

    /** The outcome from the coordinator, else from a participant that knows it; undefined while nobody reachable does. */
    protected async ask(record: Participation): Promise<TransactionOutcome | undefined> {
        const askers = [record.coordinator, ...record.participants.filter(peerId => peerId !== this.context.peer.id && peerId !== record.coordinator)];
        for (const peerId of askers) {
            try {
                const remote = this.context.peer.to(peerId).controller<TransactionsApi>(TransactionsApi, { timeout: this.callTimeoutMs, idempotent: transactionsIdempotent });
                const state = await remote.outcome(record.coordinator, record.id);
                if (state === 'committed' || state === 'aborted') return state;
                // The coordinator is alive and has not decided yet: it delivers the decision itself.
                if (peerId === record.coordinator && (state === 'pending' || state === 'prepared')) return undefined;
            } catch {
                // Unreachable, or it does not know: ask the next.
            }
        }
        return undefined;
    }

    protected contextOf(coordinator: string, id: string, operation: string, participants: readonly string[], data: string): TransactionContext | undefined {
        try {
            return { id, coordinator, operation, participants, data: data === '' ? undefined : JSON.parse(data) };
        } catch {
            return undefined;
        }
    }

    protected async run(work: () => void | Promise<void>): Promise<void> {
        try {
            await work();
        } catch (error) {
            this.context.peer.errors$.next(error as Error);
        }
    }

    protected load(key: string): Promise<Participation | undefined> {
        return this.context.database.query(Participation).filter({ key }).findOneOrUndefined();
    }

    protected save(record: Participation): Promise<void> {
        return this.context.database.write(async session => void session.add(record));
    }
}
