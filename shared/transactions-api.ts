import { ControllerSymbol } from '@deepkit/rpc';
import { MaxLength, MinLength, Pattern } from '@deepkit/type';
import { PeerId } from './peer-id';

export const TRANSACTION_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** A transaction's ID: 1 to 128 letters, digits, `.`, `_`, `:` or `-` (a UUID unless the app gives one). */
export type TransactionId = string & MinLength<1> & MaxLength<128> & Pattern<typeof TRANSACTION_ID_PATTERN>;
/** The name of an operation participants handle (`handle(operation, …)`). */
export type OperationName = string & MinLength<1> & MaxLength<128>;

/** Participants one transaction may have. */
export const MAX_PARTICIPANTS = 64;
/** Longest `data` of a transaction, as JSON text. */
export const MAX_TRANSACTION_DATA = 256 * 1024;

export type Vote = 'yes' | 'no';
export type TransactionOutcome = 'committed' | 'aborted';

/**
 * What a participant knows of a transaction: `prepared` (voted yes, outcome not known yet), a final state, `pending`
 * (its prepare is still running), or `unknown` (no trace of it).
 */
export type ParticipantState = 'prepared' | 'committed' | 'aborted' | 'pending' | 'unknown';

export interface PrepareRequest {
    id: TransactionId;
    operation: OperationName;
    /** The transaction's data as JSON text. */
    data: string & MaxLength<typeof MAX_TRANSACTION_DATA>;
    /** Every participant (so a participant in doubt can ask the others). */
    participants: PeerId[] & MinLength<1> & MaxLength<typeof MAX_PARTICIPANTS>;
}

/**
 * Two-phase commit between peers (peer feature `transactions()`). The coordinator is always the caller the broker
 * verified: a participant keeps each coordinator's transactions apart, so nobody can vote or decide for another
 * coordinator's transaction.
 */
export interface TransactionsApi {
    /** Phase one: the participant runs its `prepare` handler once per transaction, persists its vote, answers it. */
    prepare(request: PrepareRequest): Promise<Vote>;

    /** Phase two, from the coordinator: the participant applies the outcome once, persists it, answers its state. */
    decide(id: TransactionId, outcome: TransactionOutcome): Promise<ParticipantState>;

    /**
     * Asked by a participant in doubt, of the coordinator (`coordinator` is then the answering peer) or of another
     * participant. Only participants of the transaction may ask. A participant that has not voted answers
     * `aborted` and will vote no from then on (it never voted yes, so the transaction cannot commit).
     */
    outcome(coordinator: PeerId, id: TransactionId): Promise<ParticipantState>;
}

export const TransactionsApi = ControllerSymbol<TransactionsApi>('switchboard/transactions');
/** Each is safe to repeat: a participant answers a repeated prepare or decision from what it persisted. */
export const transactionsIdempotent = ['prepare', 'decide', 'outcome'] as const;
