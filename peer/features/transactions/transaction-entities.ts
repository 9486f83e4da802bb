import { entity, Index, PrimaryKey } from '@deepkit/type';
import { ParticipantState, Vote } from '@switchboard/protocol';

/** A participant's vote as the coordinator saw it: `none` when it did not answer in time (or could not be reached). */
export type RecordedVote = Vote | 'none';

/**
 * A transaction this peer coordinates. Written before the first prepare is sent (`preparing`), and again with the
 * decision before any participant hears it: a coordinator that restarts finishes from here.
 */
@(entity.name('transaction_coordinated').collection('transactions_coordinated'))
export class CoordinatedTransaction {
    state: 'preparing' | 'committed' | 'aborted' = 'preparing';
    votes: Record<string, RecordedVote> = {};
    /** Participant → the final state it acknowledged; the decision is re-sent to the others until they do. */
    acknowledged: Record<string, ParticipantState> = {};
    decidedAt?: Date;
    createdAt: Date = new Date;

    constructor(
        public id: string & PrimaryKey,
        public operation: string,
        public participants: string[],
        public data: string,
    ) {
    }
}

/**
 * A transaction this peer takes part in, keyed by its coordinator and ID (one coordinator cannot touch another's).
 * Written with the vote before the vote is answered, and with the outcome before it is acknowledged.
 */
@(entity.name('transaction_participation').collection('transactions_participated'))
export class Participation {
    /** Set when this peer voted; unset for a transaction it aborted before it voted (it will vote no). */
    vote?: Vote;
    updatedAt: Date = new Date;

    constructor(
        public key: string & PrimaryKey,
        public coordinator: string & Index,
        public id: string,
        public operation: string,
        public participants: string[],
        public data: string,
        public state: 'prepared' | 'committed' | 'aborted',
    ) {
    }
}

export function participationKey(coordinator: string, id: string): string {
    return `${coordinator} ${id}`;
}
