/**
 * A transactions peer in a process of its own, for tests that kill it:
 * `transaction-process.ts <broker url> <peer id> <storage file> <mode> [transaction id] [participants…]`
 * - `participant`: handles `transfer` (votes yes) and prints each handler call: `prepare <id>`, `commit <id>`, `abort <id>`.
 * - `coordinate`: runs transaction <id> among the participants and kills itself (SIGKILL) the moment its decision is
 *   persisted, before any participant hears it.
 * - `coordinator`: just comes back (and finishes what it left).
 */
import { filter } from 'rxjs/operators';
import { Peer, transactions } from '../../peer';

const [url, id, storage, mode, transactionId, ...participants] = process.argv.slice(2);
const peer = Peer.create({ url, id, storage, features: { transactions: transactions({ timeoutMs: 10_000 }) } });
const log = (line: string): void => void process.stdout.write(line + '\n');

if (mode === 'participant') {
    peer.features.transactions.handle('transfer', {
        prepare: transaction => (log(`prepare ${transaction.id}`), true),
        commit: transaction => void log(`commit ${transaction.id}`),
        abort: transaction => void log(`abort ${transaction.id}`),
    });
}
peer.features.transactions.events$.pipe(filter(event => event.role === 'coordinator')).subscribe(event => {
    log(`decided ${event.id} ${event.state}`);
    if (mode === 'coordinate') process.kill(process.pid, 'SIGKILL');
});

peer.start().then(async () => {
    log(`${id} registered`);
    if (mode === 'coordinate') await peer.features.transactions.run({ id: transactionId, participants, operation: 'transfer', data: { amount: 5 } });
}, error => {
    console.error(error);
    process.exit(1);
});
