import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { Peer, TransactionContext, transactions } from '../../peer';
import { PeerDatabase } from '../../peer/storage/peer-database';
import { CoordinatedTransaction, Participation, participationKey } from '../../peer/features/transactions/transaction-entities';
import { TransactionsApi } from '../../shared';
import { eventually, Resources } from '../helpers';
import { Run, runProgram } from '../processes';
import { peerInternals } from '../../peer/internal';

interface Transfer {
    amount: number;
}

/** What one participant's handlers did, in order. */
class Ledger {
    calls: string[] = [];
    vote: boolean | 'hang' = true;
    protected hung: (() => void)[] = [];

    handler() {
        return {
            prepare: (transaction: TransactionContext<Transfer>) => {
                this.calls.push(`prepare ${transaction.id} ${transaction.data.amount}`);
                if (this.vote !== 'hang') return this.vote;
                return new Promise<boolean>(resolve => this.hung.push(() => resolve(true)));
            },
            commit: (transaction: TransactionContext<Transfer>) => void this.calls.push(`commit ${transaction.id}`),
            abort: (transaction: TransactionContext<Transfer>) => void this.calls.push(`abort ${transaction.id}`),
        };
    }

    /** Lets hung prepares vote yes (too late). */
    release(): void {
        for (const resolve of this.hung.splice(0)) resolve();
    }
}

const resources = new Resources();

/** A participant's record as a crash left it: voted yes (and, for `committed`, heard the outcome). */
async function leftByACrash(storage: string, coordinator: string, id: string, participants: string[], state: 'prepared' | 'committed'): Promise<void> {
    const database = new PeerDatabase(storage, [Participation, CoordinatedTransaction]);
    await database.migrate();
    const record = new Participation(participationKey(coordinator, id), coordinator, id, 'transfer', participants, JSON.stringify({ amount: 7 }), state);
    record.vote = 'yes';
    await database.persist(record);
    database.disconnect();
}

describe('transactions (two-phase commit)', () => {
    let directory: string;
    beforeEach(() => directory = mkdtempSync(join(tmpdir(), 'switchboard-transactions-')));
    afterEach(async () => {
        await resources.closeAll();
        rmSync(directory, { recursive: true, force: true });
    });

    async function peer(url: string, id: string, ledger?: Ledger): Promise<Peer<{ transactions: ReturnType<typeof transactions> }>> {
        const created = Peer.create({ url, id, features: { transactions: transactions({ timeoutMs: 5_000 }) } });
        if (ledger) created.features.transactions.handle('transfer', ledger.handler());
        await created.start();
        return resources.add(created, p => p.close());
    }

    async function shop() {
        const broker = await resources.broker();
        const ledgers = { bob: new Ledger(), carol: new Ledger() };
        const alice = await peer(broker.url, 'alice');
        const bob = await peer(broker.url, 'bob', ledgers.bob);
        const carol = await peer(broker.url, 'carol', ledgers.carol);
        return { broker, alice, bob, carol, ledgers };
    }

    const transfer = (id: string, timeoutMs?: number) => ({ id, participants: ['bob', 'carol'], operation: 'transfer', data: { amount: 5 }, timeoutMs });

    it('commits when every participant votes yes; the result lists each vote and state', async () => {
        const { alice, bob, carol, ledgers } = await shop();
        expect(await alice.features.transactions.run(transfer('t-yes'))).toEqual({
            id: 't-yes', outcome: 'committed',
            participants: [{ peerId: 'bob', vote: 'yes', state: 'committed' }, { peerId: 'carol', vote: 'yes', state: 'committed' }],
        });
        expect(ledgers.bob.calls).toEqual(['prepare t-yes 5', 'commit t-yes']);
        expect(ledgers.carol.calls).toEqual(['prepare t-yes 5', 'commit t-yes']);
        expect(await bob.features.transactions.stateOf('alice', 't-yes')).toBe('committed');
        expect(await carol.features.transactions.stateOf('alice', 't-yes')).toBe('committed');
    });

    it('a participant that votes no aborts it everywhere', async () => {
        const { alice, bob, carol, ledgers } = await shop();
        ledgers.carol.vote = false;
        const result = await alice.features.transactions.run(transfer('t-no'));
        expect(result.outcome).toBe('aborted');
        expect(result.participants).toEqual([{ peerId: 'bob', vote: 'yes', state: 'aborted' }, { peerId: 'carol', vote: 'no', state: 'aborted' }]);
        expect(ledgers.bob.calls).toEqual(['prepare t-no 5', 'abort t-no']);
        // A participant that votes no leaves nothing behind in prepare: it hears of no outcome.
        expect(ledgers.carol.calls).toEqual(['prepare t-no 5']);
        expect(await bob.features.transactions.stateOf('alice', 't-no')).toBe('aborted');
        expect(await carol.features.transactions.stateOf('alice', 't-no')).toBe('aborted');
    });

    it('a participant that never answers prepare: aborted everywhere at the timeout, and its late yes is undone', async () => {
        const { alice, bob, carol, ledgers } = await shop();
        ledgers.carol.vote = 'hang';
        const result = await alice.features.transactions.run(transfer('t-silent', 3_000));
        expect(result).toMatchObject({ outcome: 'aborted', participants: [{ peerId: 'bob', vote: 'yes', state: 'aborted' }, { peerId: 'carol', vote: 'none', state: 'aborted' }] });
        expect(await bob.features.transactions.stateOf('alice', 't-silent')).toBe('aborted');

        // The late yes finds the abort already recorded: its prepare is undone at once.
        ledgers.carol.release();
        await carol.features.transactions.participant.idle();
        expect(ledgers.carol.calls).toEqual(['prepare t-silent 5', 'abort t-silent']);
        expect(await carol.features.transactions.stateOf('alice', 't-silent')).toBe('aborted');
        expect(ledgers.bob.calls).toEqual(['prepare t-silent 5', 'abort t-silent']);
    });

    it('the same ID twice (at once, and again later) has one outcome and runs each handler once', async () => {
        const { alice, ledgers } = await shop();
        const [first, second] = await Promise.all([alice.features.transactions.run(transfer('t-twice')), alice.features.transactions.run(transfer('t-twice'))]);
        const third = await alice.features.transactions.run({ ...transfer('t-twice'), data: { amount: 99 } });
        expect(first.outcome).toBe('committed');
        expect(second).toEqual(first);
        expect(third).toEqual(first);
        expect(ledgers.bob.calls).toEqual(['prepare t-twice 5', 'commit t-twice']);
        expect(ledgers.carol.calls).toEqual(['prepare t-twice 5', 'commit t-twice']);
    });

    it('an unreachable participant is a missing vote: aborted at once, without waiting for the timeout', async () => {
        const { alice, ledgers } = await shop();
        const result = await alice.features.transactions.run({ id: 't-offline', participants: ['bob', 'nobody'], operation: 'transfer', data: { amount: 1 }, timeoutMs: 60_000 });
        expect(result).toMatchObject({ outcome: 'aborted', participants: [{ peerId: 'bob', state: 'aborted' }, { peerId: 'nobody', vote: 'none', state: 'pending' }] });
        expect(ledgers.bob.calls.at(-1)).toBe('abort t-offline');
    });

    it("a stranger cannot fill a participant's storage, and finished transactions are forgotten after the retention", async () => {
        const { broker, bob } = await shop();
        const stranger = await peer(broker.url, 'stranger');
        const remote = stranger.to('bob').controller<TransactionsApi>(TransactionsApi);
        expect(await remote.prepare({ id: 'x-1', operation: 'no-such-operation', data: '', participants: ['bob'] })).toBe('no');
        expect(await remote.decide('x-2', 'aborted')).toBe('aborted');
        expect(await remote.decide('x-3', 'committed')).toBe('unknown');
        expect(await peerInternals(bob).database.query(Participation).count()).toBe(0);

        let now = Date.now();
        const alice = await (async () => {
            const created = Peer.create({ url: broker.url, id: 'alice-2', clock: () => now, features: { transactions: transactions({ retentionMs: 60_000 }) } });
            await created.start();
            return resources.add(created, p => p.close());
        })();
        expect((await alice.features.transactions.run(transfer('t-old'))).outcome).toBe('committed');
        now += 61_000;
        await alice.pause();
        await alice.resume();
        // Pruned after the registration, in the background: rows announce nothing.
        await eventually(async () => await peerInternals(alice).database.query(CoordinatedTransaction).filter({ id: 't-old' }).count() === 0);
    });

    it('a participant in doubt whose coordinator is gone learns the outcome from another participant; with none that knows, it waits', async () => {
        const broker = await resources.broker();
        const files = (id: string) => join(directory, `${id}.sqlite`);
        await leftByACrash(files('bob'), 'ghost', 't-ghost', ['bob', 'carol'], 'committed');
        await leftByACrash(files('carol'), 'ghost', 't-ghost', ['bob', 'carol'], 'prepared');
        await leftByACrash(files('dave'), 'ghost', 't-doubt', ['dave', 'erin'], 'prepared');
        await leftByACrash(files('erin'), 'ghost', 't-doubt', ['dave', 'erin'], 'prepared');
        const start = async (id: string, ledger: Ledger) => {
            const created = Peer.create({ url: broker.url, id, storage: files(id), features: { transactions: transactions({ timeoutMs: 2_000 }) } });
            created.features.transactions.handle('transfer', ledger.handler());
            const committed = firstValueFrom(created.features.transactions.events$.pipe(filter(event => event.state === 'committed')));
            await created.start();
            resources.add(created, p => p.close());
            return { peer: created, committed };
        };
        const ledgers = { bob: new Ledger(), carol: new Ledger(), dave: new Ledger(), erin: new Ledger() };
        await start('bob', ledgers.bob);
        const carol = await start('carol', ledgers.carol);
        await carol.committed;
        expect(ledgers.carol.calls).toEqual(['commit t-ghost']);
        expect(ledgers.bob.calls).toEqual([]);

        // Both voted yes and nobody reachable knows the outcome: deciding alone could contradict the coordinator.
        const dave = await start('dave', ledgers.dave);
        const erin = await start('erin', ledgers.erin);
        await Promise.all([dave.peer.features.transactions.participant.resolveInDoubt(), erin.peer.features.transactions.participant.resolveInDoubt()]);
        expect((await dave.peer.features.transactions.inDoubt()).map(record => record.id)).toEqual(['t-doubt']);
        expect(await erin.peer.features.transactions.stateOf('ghost', 't-doubt')).toBe('prepared');
        expect([...ledgers.dave.calls, ...ledgers.erin.calls]).toEqual([]);
    });

    describe('killed with SIGKILL', () => {
        jest.setTimeout(90_000);
        const children: Run[] = [];
        afterEach(async () => {
            for (const child of children.splice(0)) {
                child.child.kill('SIGKILL');
                await child.exit;
            }
        });

        function start(url: string, id: string, storage: string, mode: string, ...rest: string[]): Run {
            const run = runProgram('tests/features/transaction-process.ts', [url, id, storage, mode, ...rest]);
            children.push(run);
            return run;
        }

        it('a coordinator killed after deciding commit finishes once it restarts: every participant commits', async () => {
            const { broker, bob, carol, ledgers } = await shop();
            const storage = join(directory, 'coordinator.sqlite');
            const killed = start(broker.url, 'dora', storage, 'coordinate', 't-kill', 'bob', 'carol');
            await killed.waitFor(/decided t-kill committed/, 60_000);
            await killed.exit;
            // Both voted yes and heard nothing since: in doubt.
            expect(await bob.features.transactions.stateOf('dora', 't-kill')).toBe('prepared');
            expect(await carol.features.transactions.stateOf('dora', 't-kill')).toBe('prepared');
            expect(ledgers.bob.calls).toEqual(['prepare t-kill 5']);

            const committed = Promise.all([bob, carol].map(participant => firstValueFrom(participant.features.transactions.events$.pipe(filter(event => event.id === 't-kill' && event.state === 'committed')))));
            start(broker.url, 'dora', storage, 'coordinator');
            await committed;
            expect(ledgers.bob.calls).toEqual(['prepare t-kill 5', 'commit t-kill']);
            expect(ledgers.carol.calls).toEqual(['prepare t-kill 5', 'commit t-kill']);
        });

        it('a participant killed while prepared applies the outcome after its restart', async () => {
            const { broker, alice, ledgers } = await shop();
            const storage = join(directory, 'erin.sqlite');
            const erin = start(broker.url, 'erin', storage, 'participant');
            await erin.waitFor(/erin registered/, 60_000);
            // Killed the moment the decision is persisted, before it is sent: erin voted yes and hears nothing.
            alice.features.transactions.events$.pipe(filter(event => event.role === 'coordinator' && event.id === 't-erin')).subscribe(() => erin.child.kill('SIGKILL'));
            const result = await alice.features.transactions.run({ id: 't-erin', participants: ['bob', 'erin'], operation: 'transfer', data: { amount: 5 } });
            expect(result).toMatchObject({ outcome: 'committed', participants: [{ peerId: 'bob', vote: 'yes', state: 'committed' }, { peerId: 'erin', vote: 'yes', state: 'pending' }] });
            await erin.exit;
            expect(erin.output()).toMatch(/prepare t-erin/);
            expect(erin.output()).not.toMatch(/commit t-erin/);

            const restarted = start(broker.url, 'erin', storage, 'participant');
            await restarted.waitFor(/commit t-erin/, 60_000);
            // Once, whoever told it first (its own question, or the coordinator seeing it come back); running the ID
            // again delivers the decision to whoever has not acknowledged it yet.
            const again = await alice.features.transactions.run({ id: 't-erin', participants: ['bob', 'erin'], operation: 'transfer' });
            expect(again.participants).toEqual([{ peerId: 'bob', vote: 'yes', state: 'committed' }, { peerId: 'erin', vote: 'yes', state: 'committed' }]);
            expect(restarted.output().match(/commit t-erin/g)).toHaveLength(1);
            expect(restarted.output()).not.toMatch(/prepare t-erin/);
            expect(ledgers.bob.calls).toEqual(['prepare t-erin 5', 'commit t-erin']);
        });
    });
});

