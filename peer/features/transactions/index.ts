import { TransactionsApi } from '@switchboard/protocol';
import { PeerFeature } from '../../feature';
import { CoordinatedTransaction, Participation } from './transaction-entities';
import { defaultTransactionOptions, TransactionOptions, Transactions } from './transactions';
import { TransactionsController } from './transactions-controller';

export { Transactions, defaultTransactionOptions } from './transactions';
export type { TransactionOptions } from './transactions';
export type { RunOptions, TransactionResult, ParticipantResult } from './transaction-coordinator';
export type { TransactionContext, TransactionHandler, TransactionEvent } from './transaction-handler';

/**
 * Two-phase commit as a peer feature: `Peer.create({ url, id, features: { transactions: transactions() } })`, then
 * `peer.features.transactions.handle(…)` on participants and `.run(…)` on the coordinator.
 */
export function transactions(options: Partial<TransactionOptions> = {}): PeerFeature<Transactions> {
    return {
        entities: [CoordinatedTransaction, Participation],
        setup(context) {
            const service = new Transactions(context, { ...defaultTransactionOptions, ...options });
            return {
                api: service,
                providers: [{ provide: Transactions, useValue: service }],
                controllers: [[TransactionsController, TransactionsApi]],
                registered: () => service.registered(),
                peerOnline: peerId => service.peerOnline(peerId),
                close: () => service.close(),
            };
        },
    };
}
