import { BrokerProcess } from '../broker-process';
import { HostEvent, PeerHost } from '../peer-host-client';
import { counts } from '../report';
import { ChaosContext, ChaosRow, ChaosSection } from '../section';

/** The caller's call timeout: every call must end within about this, whatever happens to its target. */
const CALL_TIMEOUT_MS = 5000;
/** Low, so the broker notices a frozen target (two missed pings) well inside the call timeout. */
const PING_INTERVAL_MS = 1000;
/** The harness's own bound on a call: past it the call counts as never ended (and is abandoned). */
const OUTER_BOUND_MS = 3 * CALL_TIMEOUT_MS + 5000;

interface Sizes {
    /** Calls to peer IDs nobody registered. */
    unknown: number;
    /** Target peers per case (each case's targets are in one process). */
    targets: number;
    /** Concurrent calls to each target. */
    perTarget: number;
}

const full: Sizes = { unknown: 200, targets: 5, perTarget: 10 };
const quick: Sizes = { unknown: 5, targets: 2, perTarget: 2 };

interface CallOutcome {
    target: string;
    ms: number;
    code?: string;
    ended: boolean;
}

interface Case {
    name: string;
    outcomes: CallOutcome[];
    /** Calls in flight at the target when the fault was injected (of those made). */
    arrived?: number;
}

const ids = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);

/**
 * Calls `stall` (never answers) from alice to each target, waits until they are in flight at the targets, injects
 * `fault`, and waits for every call to end (or for the outer bound).
 */
async function runCase(name: string, caller: PeerHost, targets: string[], perTarget: number, targetHost: PeerHost | undefined, fault: () => Promise<unknown>): Promise<Case> {
    const expected = targets.length * perTarget;
    const inFlight = targetHost?.waitForEvents((event: HostEvent) => event.event === 'arrived' && event.caller === 'alice' && targets.some(target => event.tag.startsWith(`alice→${target}#`)), expected, CALL_TIMEOUT_MS);
    const calls = caller.request<CallOutcome[]>('call', { from: 'alice', targets, perTarget, action: 'stall', boundMs: OUTER_BOUND_MS }, OUTER_BOUND_MS + 15_000)
        // The caller's process itself stopped answering: none of its calls is known to have ended.
        .catch(() => targets.flatMap(target => Array.from({ length: perTarget }, () => ({ target, ms: OUTER_BOUND_MS, ended: false }))));
    const arrived = inFlight ? await inFlight : undefined;
    await fault();
    return { name, outcomes: await calls, arrived };
}

function row(result: Case): ChaosRow {
    const { outcomes } = result;
    const errors = outcomes.filter(o => o.ended && o.code);
    const answered = outcomes.filter(o => o.ended && !o.code).length;
    const never = outcomes.filter(o => !o.ended).length;
    const ratios = errors.map(o => o.ms / CALL_TIMEOUT_MS).sort((a, b) => a - b);
    const median = ratios.length ? ratios[Math.floor(ratios.length / 2)] : undefined;
    const max = ratios.length ? ratios[ratios.length - 1] : undefined;
    const codes = new Map<string, number>();
    for (const outcome of errors) codes.set(outcome.code!, (codes.get(outcome.code!) ?? 0) + 1);
    const ratio = (value: number | undefined) => value === undefined ? '—' : value.toFixed(2);
    return {
        cells: {
            'case': result.name,
            'calls': `${outcomes.length}${result.arrived !== undefined && result.arrived < outcomes.length ? ` (${result.arrived} in flight at the fault)` : ''}`,
            'ended with an error': String(errors.length),
            'answered': String(answered),
            'never ended': never ? `**${never}**` : '0',
            'time-to-error ÷ deadline (median / max)': `${ratio(median)} / ${ratio(max)}`,
            'error codes': counts(codes),
        },
        failed: never ? { why: `${result.name}: ${never} of ${outcomes.length} call(s) never ended (given up after ${OUTER_BOUND_MS / 1000} s)` } : undefined,
        data: { case: result.name, calls: outcomes.length, arrived: result.arrived, errors: errors.length, answered, neverEnded: never, medianRatio: median, maxRatio: max, codes: Object.fromEntries(codes), outcomes },
    };
}

async function runCases(context: ChaosContext): Promise<ChaosRow[]> {
    const sizes = context.quick ? quick : full;
    const hosts: PeerHost[] = [];
    let broker: BrokerProcess | undefined;
    try {
        // ts-node start-up dominates: the broker and the four peer processes start at once.
        const starting = Promise.all(['caller', 'steady', 'killed', 'frozen'].map(name => PeerHost.start(name, 90_000)));
        const [started, hostList] = await Promise.allSettled([BrokerProcess.start(':memory:', ['--pingIntervalMs', String(PING_INTERVAL_MS)], 90_000), starting]);
        if (started.status === 'fulfilled') broker = started.value;
        if (hostList.status === 'fulfilled') hosts.push(...hostList.value);
        if (started.status === 'rejected') throw started.reason;
        if (hostList.status === 'rejected') throw hostList.reason;
        const [caller, steady, killed, frozen] = hosts;
        const url = broker!.url;
        const connect = (host: PeerHost, peers: string[]) => host.request('connectMany', { options: peers.map(peer => ({ peer, url, callTimeoutMs: CALL_TIMEOUT_MS })) }, 60_000);
        const leavers = ids('leaver', sizes.targets);
        const sleepers = ids('sleeper', sizes.targets);
        const victims = ids('killed', sizes.targets);
        const frozenPeers = ids('frozen', sizes.targets);
        await Promise.all([connect(caller, ['alice']), connect(steady, [...leavers, ...sleepers]), connect(killed, victims), connect(frozen, frozenPeers)]);
        context.log('broker and peers up');

        const cases: Case[] = [];
        const record = (result: Case) => {
            cases.push(result);
            const never = result.outcomes.filter(o => !o.ended).length;
            context.log(`${result.name}: ${result.outcomes.length} calls, ${never} never ended`);
        };
        record(await runCase('unknown peer', caller, ids('nobody', sizes.unknown), 1, undefined, async () => undefined));
        record(await runCase('target leaves mid-call (close())', caller, leavers, sizes.perTarget, steady, () => steady.request('closeMany', { peers: leavers }, 30_000)));
        record(await runCase('target process SIGKILLed mid-call', caller, victims, sizes.perTarget, killed, () => killed.kill()));
        record(await runCase('target process SIGSTOPped mid-call (frozen, socket open)', caller, frozenPeers, sizes.perTarget, frozen, async () => frozen.signal('SIGSTOP')));
        await frozen.kill();
        record(await runCase('target never answers (action never returns)', caller, sleepers, sizes.perTarget, steady, async () => undefined));
        record(await runCase('broker SIGKILLed mid-call', caller, sleepers, sizes.perTarget, steady, () => broker!.kill()));
        return cases.map(row);
    } finally {
        await Promise.all(hosts.map(host => host.kill()));
        await broker?.kill();
    }
}

export const section: ChaosSection = {
    id: 'R1',
    title: 'calls that must end',
    async run(context) {
        const sizes = context.quick ? quick : full;
        return {
            columns: ['case', 'calls', 'ended with an error', 'answered', 'never ended', 'time-to-error ÷ deadline (median / max)', 'error codes'],
            rows: await runCases(context),
            notes: [
                `Broker: \`server/main.ts start --pingIntervalMs ${PING_INTERVAL_MS}\` (a connection that misses two pings is closed). Caller: SDK peer "alice" (call timeout ${CALL_TIMEOUT_MS} ms = the deadline; circuit breaker off so it cannot mask the call path) in its own process; targets in three more processes, ${sizes.targets} per case, ${sizes.perTarget} concurrent calls to each.`,
                'Every call is to an action that never returns; the fault is injected once the calls are in flight at the targets (the target leaves, its process is killed or frozen, the broker is killed). Time-to-error runs from the call to its error, in the caller\'s process.',
                `Never ended = no result and no error within ${OUTER_BOUND_MS / 1000} s (the harness then gives up on the call); \`--strict\` fails on any.`,
            ],
        };
    },
};
