import { rpc } from '@deepkit/rpc';
import { ParticipantState, PrepareRequest, TransactionId, TransactionOutcome, TransactionsApi, Vote, PeerId } from '@switchboard/protocol';
import { CallerContext } from '../../caller-context';
import { Transactions } from './transactions';

/** Serves this peer's side of two-phase commit; the coordinator is always the caller the broker verified. */
@rpc.controller(TransactionsApi)
export class TransactionsController implements TransactionsApi {
    constructor(protected transactions: Transactions, protected caller: CallerContext) {
    }

    @rpc.action()
    prepare(request: PrepareRequest): Promise<Vote> {
        return this.transactions.participant.prepare(this.caller.requirePeerId(), request);
    }

    @rpc.action()
    decide(id: TransactionId, outcome: TransactionOutcome): Promise<ParticipantState> {
        return this.transactions.participant.decide(this.caller.requirePeerId(), id, outcome);
    }

    @rpc.action()
    outcome(coordinator: PeerId, id: TransactionId): Promise<ParticipantState> {
        const asker = this.caller.requirePeerId();
        return coordinator === this.transactions.coordinator.peerId
            ? this.transactions.coordinator.answerOutcome(asker, id)
            : this.transactions.participant.answerOutcome(asker, coordinator, id);
    }
}
