import { randomBytes } from 'crypto';
import { Peer } from '../../peer';
import { EchoApi, EchoController } from '../systems';
import type { PhaseFigures } from './honest-load';

/**
 * Two honest SDK peers that call each other's echo controller without pause, in a process of their own so the
 * attack traffic of the harness does not skew their latencies. Run by honest-load.ts; the protocol is one line
 * each way on stdin/stdout:
 * - prints `{"ready":true}` once both peers are registered;
 * - `phase <name>`: calls started from now on count towards <name>;
 * - `report`: prints `{"report":{<phase>: PhaseFigures}}` for all phases so far;
 * - end of stdin: closes the peers and exits.
 */
const [url, callTimeoutText, pauseText] = process.argv.slice(2);
const callTimeoutMs = Number(callTimeoutText);
const pauseMs = Number(pauseText);

interface PhaseStats {
    ok: number;
    failed: number;
    errors: Record<string, number>;
    latencies: number[];
}

const phases = new Map<string, PhaseStats>();
let phase = 'setup';
let stopping = false;

function statsOf(name: string): PhaseStats {
    let stats = phases.get(name);
    if (!stats) phases.set(name, stats = { ok: 0, failed: 0, errors: {}, latencies: [] });
    return stats;
}

async function callLoop(echo: EchoApi): Promise<void> {
    while (!stopping) {
        const stats = statsOf(phase);
        const started = performance.now();
        try {
            await echo.echo(randomBytes(64));
            stats.ok++;
            stats.latencies.push(performance.now() - started);
        } catch (error) {
            stats.failed++;
            const code = (error as { code?: string }).code ?? (error as Error).constructor.name;
            stats.errors[code] = (stats.errors[code] ?? 0) + 1;
        }
        // A steady stream rather than a flood: the load must leave the broker's core to the attack it measures.
        await new Promise(resolve => setTimeout(resolve, pauseMs));
    }
}

function percentile(sorted: number[], p: number): number | null {
    return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : null;
}

function report(): Record<string, PhaseFigures> {
    const figures: Record<string, PhaseFigures> = {};
    for (const [name, stats] of phases) {
        const sorted = [...stats.latencies].sort((a, b) => a - b);
        const calls = stats.ok + stats.failed;
        figures[name] = { calls, successRate: calls ? stats.ok / calls : null, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), errors: stats.errors };
    }
    return figures;
}

async function main(): Promise<void> {
    const options = {
        url, callTimeoutMs, expose: [[EchoController, 'bench/echo']] as [typeof EchoController, string][],
        // The breaker would turn a slow broker into instant CircuitOpen failures; we measure the broker, not it.
        circuitBreaker: { failureThreshold: Number.MAX_SAFE_INTEGER },
    };
    const alice = await Peer.connect({ ...options, id: 'chaos-alice' });
    const bob = await Peer.connect({ ...options, id: 'chaos-bob' });
    const loops = [
        callLoop(alice.to('chaos-bob').controller<EchoApi>('bench/echo')),
        callLoop(bob.to('chaos-alice').controller<EchoApi>('bench/echo')),
    ];
    process.stdout.write(JSON.stringify({ ready: true }) + '\n');

    let input = '';
    process.stdin.on('data', chunk => {
        input += chunk;
        let newline: number;
        while ((newline = input.indexOf('\n')) >= 0) {
            const [command, ...rest] = input.slice(0, newline).trim().split(' ');
            input = input.slice(newline + 1);
            if (command === 'phase') phase = rest.join(' ');
            if (command === 'report') process.stdout.write(JSON.stringify({ report: report() }) + '\n');
        }
    });
    // An EventEmitter ignores a listener's promise: a failed close surfaces as an unhandled rejection (exit 1).
    process.stdin.on('end', () => void (async () => {
        stopping = true;
        await Promise.race([Promise.all([...loops, alice.close(), bob.close()]), new Promise(resolve => setTimeout(resolve, 2000))]);
        process.exit(0);
    })());
}

main().catch(error => {
    process.stderr.write(`honest peers could not start: ${error instanceof Error ? error.stack : error}\n`);
    process.exit(1);
});
