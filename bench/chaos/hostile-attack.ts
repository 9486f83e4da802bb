import { HostileKind } from './hostile-frames';
import { addCounts, RawClient } from './raw-client';

export interface AttackLimits {
    frames: number;
    bigFrames: number;
    /** Hostile connections sending at once. */
    concurrency: number;
    /** Connections opened in all; offenders the broker closes are replaced until this many. */
    maxConnections: number;
    deadlineMs: number;
    /** After the last frame: how long the broker has to close offenders before we close the rest. */
    settleMs: number;
}

export interface AttackResult {
    framesSent: number;
    connections: number;
    /** `<close code> <reason>` → connections the broker closed that way. */
    closes: Map<string, number>;
    /** Error code → error frames the hostile clients received. */
    errors: Map<string, number>;
    /** Why it stopped before sending every frame, if it did. */
    stopped?: string;
    /** Hostile connections the broker stopped reading (their frames stayed unsent; the attack went on without them). */
    unread: number;
    seconds: number;
}

/** Bytes a hostile socket may have unsent before the attacker waits for the broker to read. */
const UNSENT_BOUND = 4 * 2 ** 20;

/**
 * Sends `limits.frames` frames of one kind from raw WebSocket clients, replacing the clients the broker closes, until
 * done, the deadline, or `abort` (the broker hung or died). Every step is bounded in time: a broker that stops
 * reading stalls the attack, never the harness.
 */
export async function runAttack(url: string, kind: HostileKind, honestPeer: string, limits: AttackLimits, abort: AbortSignal): Promise<AttackResult> {
    const started = performance.now();
    const deadline = started + limits.deadlineMs;
    const result: AttackResult = { framesSent: 0, connections: 0, closes: new Map(), errors: new Map(), unread: 0, seconds: 0 };
    const clients = new Set<RawClient>();
    const closedByUs = new WeakSet<RawClient>();
    const settled: Promise<void>[] = [];
    let failedOpens = 0;
    const stop = (why: string) => result.stopped ??= why;
    const timeLeft = () => Math.max(0, deadline - performance.now());

    const track = (client: RawClient) => {
        clients.add(client);
        settled.push(client.closed.then(({ code, reason }) => {
            clients.delete(client);
            addCounts(result.errors, client.errors);
            if (closedByUs.has(client)) return;
            const key = `${code}${reason ? ' ' + reason : ''}`;
            result.closes.set(key, (result.closes.get(key) ?? 0) + 1);
        }));
    };

    const worker = async () => {
        while (result.framesSent < limits.frames && !abort.aborted) {
            if (timeLeft() === 0) return stop('deadline');
            if (result.connections >= limits.maxConnections) return stop(`connection cap (${limits.maxConnections})`);
            result.connections++;
            let client: RawClient;
            try {
                client = await RawClient.open(url, { handshake: true, timeoutMs: Math.min(3000, timeLeft()) });
            } catch {
                if (++failedOpens > 20) return stop('the broker stopped accepting connections');
                continue;
            }
            track(client);
            const context = { source: client.id, honestPeer, bigFrames: limits.bigFrames };
            let sentHere = 0;
            while (client.open && result.framesSent < limits.frames && !abort.aborted) {
                client.send(kind.frame(result.framesSent++, context));
                if (++sentHere % 32 === 0) {
                    if (!await client.drained(UNSENT_BOUND, Math.min(5000, timeLeft()))) {
                        if (timeLeft() === 0) return stop('deadline');
                        // This broker connection no longer reads what we send; go on with another.
                        result.unread++;
                        closedByUs.add(client);
                        client.terminate();
                        break;
                    }
                    // Let close events and replies in between bursts.
                    await new Promise(resolve => setImmediate(resolve));
                }
            }
        }
    };

    await Promise.all(Array.from({ length: limits.concurrency }, worker));
    if (abort.aborted) stop(String(abort.reason ?? 'aborted'));

    // Offenders may be closed once the broker has read their last frames; give it a moment, then close the rest.
    const settleUntil = performance.now() + limits.settleMs;
    for (const client of clients) {
        if (!await client.drained(0, Math.max(0, settleUntil - performance.now()))) break;
    }
    await Promise.race([Promise.all(settled), new Promise(resolve => setTimeout(resolve, Math.max(0, settleUntil - performance.now())))]);
    for (const client of [...clients]) {
        closedByUs.add(client);
        client.terminate();
    }
    await Promise.all(settled);
    result.seconds = (performance.now() - started) / 1000;
    return result;
}
