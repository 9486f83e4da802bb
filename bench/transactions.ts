import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Peer, transactions } from '../peer';
import type { Measurement } from './scenarios';
import { EchoApi, EchoController, ServerProcess } from './systems';

const PARTICIPANTS = ['bob', 'carol', 'dave'];

function percentile(sorted: number[], p: number): number {
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/**
 * A transaction among 3 participants (two-phase commit: votes and decisions written to SQLite files, as a peer
 * with a storage file keeps them) next to what it cannot do with less: three plain calls, one to each participant,
 * in parallel. One at a time, `rounds` of each after a warm-up.
 */
export async function transactionCost(rounds: number): Promise<Measurement[]> {
    const scenario = `transaction: 3 participants, ${rounds} rounds`;
    const inFiles = await measured(rounds, true);
    const inMemory = await measured(rounds, false);
    const row = (system: string, metric: string, value: number): Measurement => ({ scenario, system, metric, unit: 'ms', value, better: 'lower' });
    return [
        row('Switchboard', 'p50 latency', percentile(inFiles.transaction, 0.5)),
        row('Switchboard', 'p99 latency', percentile(inFiles.transaction, 0.99)),
        row('Switchboard, storage in memory', 'p50 latency', percentile(inMemory.transaction, 0.5)),
        row('Switchboard, storage in memory', 'p99 latency', percentile(inMemory.transaction, 0.99)),
        row('three plain calls in parallel', 'p50 latency', percentile(inFiles.plain, 0.5)),
        row('three plain calls in parallel', 'p99 latency', percentile(inFiles.plain, 0.99)),
    ];
}

async function measured(rounds: number, files: boolean): Promise<{ plain: number[], transaction: number[] }> {
    const server = await ServerProcess.start('switchboard.ts');
    const url = `ws://127.0.0.1:${server.port}`;
    const directory = mkdtempSync(join(tmpdir(), 'switchboard-bench-transactions-'));
    const peers: Peer<{ transactions: ReturnType<typeof transactions> }>[] = [];
    try {
        for (const id of ['alice', ...PARTICIPANTS]) {
            const peer = Peer.create({ url, id, storage: files ? join(directory, `${id}.sqlite`) : ':memory:', features: { transactions: transactions() }, expose: [[EchoController, 'bench/echo']] });
            peer.features.transactions.handle('noop', { prepare: () => true, commit: () => undefined, abort: () => undefined });
            await peer.start();
            peers.push(peer);
        }
        const alice = peers[0];
        const payload = new Uint8Array(64);
        const echoes = PARTICIPANTS.map(id => alice.to(id).controller<EchoApi>('bench/echo'));
        const plain = () => Promise.all(echoes.map(echo => echo.echo(payload)));
        const transaction = () => alice.features.transactions.run({ participants: PARTICIPANTS, operation: 'noop', data: { amount: 1 } });
        const measure = async (work: () => Promise<unknown>) => {
            for (let i = 0; i < Math.max(10, rounds / 10); i++) await work();
            const times: number[] = [];
            for (let i = 0; i < rounds; i++) {
                const started = performance.now();
                await work();
                times.push(performance.now() - started);
            }
            return times.sort((a, b) => a - b);
        };
        const plainTimes = await measure(plain);
        const transactionTimes = await measure(async () => {
            const result = await transaction();
            if (result.outcome !== 'committed') throw new Error(`a bench transaction ended ${result.outcome}`);
        });
        return { plain: plainTimes, transaction: transactionTimes };
    } finally {
        for (const peer of peers.reverse()) await peer.close();
        await server.stop();
        rmSync(directory, { recursive: true, force: true });
    }
}
