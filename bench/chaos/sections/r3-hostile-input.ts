import { BrokerHealth, BrokerProcess } from '../broker-process';
import { AttackLimits, runAttack } from '../hostile-attack';
import { HostileKind, hostileKinds } from '../hostile-frames';
import { HonestLoad, PhaseFigures } from '../honest-load';
import { counts, mebibytes, ms, percent } from '../report';
import { ChaosContext, ChaosRow, ChaosSection } from '../section';
import { bigMulticast } from '../multicast-attacks';

interface Sizes extends AttackLimits {
    /** Honest traffic measured before each attack. */
    beforeMs: number;
    /** How long a broker may take to answer /health after an attack before it counts as unresponsive. */
    recoveryMs: number;
    /** How much longer an unresponsive broker is watched before it counts as hung and is killed. */
    hungAfterMs: number;
}

const full: Sizes = { frames: 100_000, bigFrames: 10, concurrency: 4, maxConnections: 5000, deadlineMs: 60_000, settleMs: 2000, beforeMs: 3000, recoveryMs: 10_000, hungAfterMs: 30_000 };
const quick: Sizes = { frames: 2000, bigFrames: 2, concurrency: 4, maxConnections: 200, deadlineMs: 10_000, settleMs: 300, beforeMs: 500, recoveryMs: 4000, hungAfterMs: 4000 };

/** Honest calls give up after this; a hung broker shows as failed calls, never as a stuck harness. */
const CALL_TIMEOUT_MS = 2000;
const HONEST_TARGET = 'chaos-bob';

const columns = ['kind', 'frames sent', 'broker', 'honest ok before → during', 'p50 before → during', 'p99 before → during', 'offenders closed (code reason)', 'error replies', 'broker RSS before → after'];

/** A broker and its honest traffic; replaced after an attack that hung or killed the broker. */
interface Arena {
    broker: BrokerProcess;
    honest: HonestLoad;
}

async function openArena(): Promise<Arena> {
    const broker = await BrokerProcess.start(':memory:');
    try {
        const honest = await HonestLoad.start(broker.url, { callTimeoutMs: CALL_TIMEOUT_MS, pauseMs: 2, startTimeoutMs: 30_000 });
        return { broker, honest };
    } catch (error) {
        await broker.kill();
        throw error;
    }
}

async function closeArena(arena: Arena, healthy: boolean): Promise<void> {
    // A hung broker cannot shut down cleanly; the honest peers would wait for it.
    if (!healthy) await arena.broker.kill();
    await arena.honest.stop();
    await arena.broker.stop();
}

/**
 * Watches /health while an attack runs: three missed answers in a row (or an exit) abort the attack, so a hung broker
 * costs seconds, not the run.
 */
function watchdog(broker: BrokerProcess, abort: AbortController): { stop(): void } {
    let misses = 0;
    let running = true;
    void (async () => {
        while (running && !abort.signal.aborted) {
            const health = await broker.health(1500);
            if (health === 'died') abort.abort('broker died');
            misses = health === 'up' ? 0 : misses + 1;
            if (misses >= 3) abort.abort('broker unresponsive');
            if (health === 'up') await new Promise(resolve => setTimeout(resolve, 500));
        }
    })();
    return { stop: () => running = false };
}

/** /health until it answers or `withinMs` passes: a broker still working through a flood is slow, not hung. */
async function recovery(broker: BrokerProcess, withinMs: number): Promise<{ health: BrokerHealth, seconds: number }> {
    const started = performance.now();
    for (; ;) {
        const left = withinMs - (performance.now() - started);
        const health = await broker.health(Math.max(500, Math.min(2000, left)));
        if (health !== 'hung' || left <= 0) return { health, seconds: (performance.now() - started) / 1000 };
    }
}

const pair = (before: string, during: string) => `${before} → ${during}`;

/** Single multicast frames of issue 18: their cost must be bounded whatever they name. */
const MULTICASTS = [
    { key: 'M1', title: 'one multicast: 10,000 unknown targets × 1 MiB body', targets: 10_000, bodyBytes: 1024 * 1024 },
    { key: 'M2', title: 'one multicast: 10,000 unknown targets × 4 KiB body (within the byte budget)', targets: 10_000, bodyBytes: 4 * 1024 },
];
/** A broker whose /health waits longer than this while one frame is handled was blocked by it. */
const BLOCKED_MS = 1000;

async function multicastRow(broker: BrokerProcess, attack: typeof MULTICASTS[number], context: ChaosContext): Promise<ChaosRow> {
    const rssBefore = broker.rss();
    const figures = await bigMulticast(broker.url, `http://127.0.0.1:${broker.port}`, { targets: attack.targets, bodyBytes: attack.bodyBytes, timeoutMs: 60_000 });
    const rssAfter = broker.rss();
    const blocked = figures.answer === 'no answer' || figures.worstHealthMs > BLOCKED_MS;
    context.log(`${attack.key}) ${figures.answer} in ${ms(figures.answerMs)}; /health slowest ${ms(figures.worstHealthMs)}`);
    return {
        cells: {
            'kind': `${attack.key}) ${attack.title}`,
            'frames sent': `1, answered in ${ms(figures.answerMs)}`,
            'broker': `${blocked ? '**blocked**' : 'up'}; /health slowest ${ms(figures.worstHealthMs)} while it ran (${figures.healthAnswers} answers)`,
            'honest ok before → during': '—',
            'p50 before → during': '—',
            'p99 before → during': '—',
            'offenders closed (code reason)': '—',
            'error replies': figures.answer === 'result' ? 'none (MulticastResult)' : figures.answer,
            'broker RSS before → after': pair(mebibytes(rssBefore), mebibytes(rssAfter)),
        },
        failed: blocked ? { why: `${attack.key}) ${attack.title}: /health took ${ms(figures.worstHealthMs)} while the broker handled one frame` } : undefined,
        data: { kind: attack.key, ...figures, rssBefore, rssAfter },
    };
}

async function attackOne(arena: Arena, kind: HostileKind, sizes: Sizes, context: ChaosContext): Promise<{ row: ChaosRow, healthy: boolean }> {
    const { broker, honest } = arena;
    honest.phase(`before ${kind.key}`);
    await new Promise(resolve => setTimeout(resolve, sizes.beforeMs));
    const rssBefore = broker.rss();
    honest.phase(`during ${kind.key}`);

    const abort = new AbortController();
    const dog = watchdog(broker, abort);
    const attack = await runAttack(broker.url, kind, HONEST_TARGET, sizes, abort.signal);
    dog.stop();
    const { health: first, seconds: firstSeconds } = abort.signal.aborted
        ? { health: (await broker.health(1000)), seconds: 0 }
        : await recovery(broker, sizes.recoveryMs);
    honest.phase('between');
    // Working through a backlog and stuck for good look the same for a while; watch a little longer before calling it.
    const { health, seconds: laterSeconds } = first === 'hung' ? await recovery(broker, sizes.hungAfterMs) : { health: first, seconds: 0 };
    const seconds = firstSeconds + laterSeconds;
    const rssAfter = broker.rss();

    let figures: Record<string, PhaseFigures> = {};
    try {
        figures = await honest.report();
    } catch (error) {
        context.log(`honest peers did not report: ${(error as Error).message.split('\n')[0]}`);
    }
    const before = figures[`before ${kind.key}`];
    const during = figures[`during ${kind.key}`];
    const brokerCell = health === 'up'
        ? `up${attack.stopped === 'broker unresponsive' ? ' after missing /health 3× during the attack' : ''}${seconds > 1 ? ` (/health answered ${seconds.toFixed(1)} s after the attack)` : ''}${attack.unread ? `; stopped reading ${attack.unread} offender(s)` : ''}`
        : health === 'died' ? `**broker died** (exit ${await Promise.race([broker.program.exited, 'unknown'])})` : '**broker hung**';
    const sent = `${attack.framesSent.toLocaleString('en')}${attack.stopped ? ` (stopped: ${attack.stopped})` : ''} over ${attack.connections} conn., ${attack.seconds.toFixed(1)} s`;
    const duringErrors = during && Object.keys(during.errors).length ? ` [${counts(during.errors)}]` : '';
    const row: ChaosRow = {
        cells: {
            'kind': `${kind.key}) ${kind.title}`,
            'frames sent': sent,
            'broker': brokerCell,
            'honest ok before → during': pair(percent(before?.successRate), percent(during?.successRate)) + ` (${before?.calls ?? 0} / ${during?.calls ?? 0} calls)${duringErrors}`,
            'p50 before → during': pair(ms(before?.p50), ms(during?.p50)),
            'p99 before → during': pair(ms(before?.p99), ms(during?.p99)),
            'offenders closed (code reason)': counts(attack.closes),
            'error replies': counts(attack.errors),
            'broker RSS before → after': pair(mebibytes(rssBefore), mebibytes(rssAfter)),
        },
        failed: health === 'up' ? undefined : { why: `${kind.key}) ${kind.title}: broker ${health}` },
        data: { kind: kind.key, health, recoverySeconds: seconds, attack: { ...attack, closes: Object.fromEntries(attack.closes), errors: Object.fromEntries(attack.errors) }, honest: { before, during }, rssBefore, rssAfter },
    };
    context.log(`${kind.key}) ${health}; ${attack.framesSent} frames in ${attack.seconds.toFixed(1)} s; closed: ${counts(attack.closes)}`);
    return { row, healthy: health === 'up' };
}

export const section: ChaosSection = {
    id: 'R3',
    title: 'hostile input',
    async run(context) {
        const sizes = context.quick ? quick : full;
        const rows: ChaosRow[] = [];
        let arena: Arena | undefined;
        try {
            for (const kind of hostileKinds) {
                arena ??= await openArena();
                const { row, healthy } = await attackOne(arena, kind, sizes, context);
                rows.push(row);
                if (!healthy) {
                    await closeArena(arena, false);
                    arena = undefined;
                }
            }
            for (const attack of MULTICASTS) {
                arena ??= await openArena();
                rows.push(await multicastRow(arena.broker, attack, context));
            }
        } finally {
            if (arena) await closeArena(arena, true);
        }
        return {
            columns,
            rows,
            notes: [
                `Each kind: ${sizes.frames.toLocaleString('en')} frames (15 MiB ones: ${sizes.bigFrames}) from up to ${sizes.concurrency} raw ws clients at once, at most ${sizes.maxConnections} connections, ${sizes.deadlineMs / 1000} s deadline.`,
                `Broker: \`server/main.ts start --port 0 --database :memory:\` (default limits), replaced after a kind that hung or killed it. Hung = /health unanswered 3× in a row during the attack, or for ${(sizes.recoveryMs + sizes.hungAfterMs) / 1000} s after it.`,
                `Honest: two SDK peers in their own process calling each other's echo (64 B, ${CALL_TIMEOUT_MS} ms timeout) without pause; "before" is the ${sizes.beforeMs / 1000} s before the attack, "during" from its first frame until the broker answered /health again.`,
                'Offenders closed: WebSocket close codes and reasons the hostile clients got from the broker (connections we closed ourselves at the end are not counted).',
                `M rows: one Multicast frame from a raw client while /health is polled back to back; the slowest /health answer is how long the frame blocked the broker (over ${BLOCKED_MS} ms fails --strict).`,
            ],
        };
    },
};
