import { Peer, PeerOptions } from '../../peer';
import { RelayPayload } from '../../shared/relay-api';
import { Arrivals, STALL_PATH, StallApi, StallController } from './stall-controller';

/**
 * SDK peers in a process of their own, so the reliability sections can kill -9 or freeze them for real. Driven by
 * peer-host-client.ts, one JSON line each way: a request `{"id":1,"op":"connect",…}` is answered by
 * `@chaos {"reply":1,"result":…}` (or `"error"`); `@chaos {"event":…}` lines report what happens meanwhile
 * (a call arrived at a target, a message was acknowledged to the sending app, one was received by the app).
 * stdout to a pipe is synchronous on Linux: an acknowledgement printed before a SIGKILL has reached the parent.
 */

interface ConnectOptions {
    peer: string;
    url: string;
    storage?: string;
    callTimeoutMs?: number;
    trustedRelays?: string[];
    quotaPerSender?: number;
    /** Report what the app receives (chat messages, relayed payloads) as events. */
    follow?: boolean;
}

const peers = new Map<string, Peer>();
const arrivals = new Arrivals();
let stopping = false;

function print(message: unknown): void {
    process.stdout.write('@chaos ' + JSON.stringify(message) + '\n');
}

function codeOf(error: unknown): string {
    return (error as { code?: string })?.code ?? (error as Error)?.constructor?.name ?? String(error);
}

function sleep(ms: number): Promise<void> {
    return new Promise(resolve => setTimeout(resolve, ms));
}

arrivals.arrived$.subscribe(({ tag, caller }) => print({ event: 'arrived', tag, caller }));

async function connect(options: ConnectOptions): Promise<void> {
    const peerOptions: PeerOptions = {
        url: options.url, id: options.peer, storage: options.storage, callTimeoutMs: options.callTimeoutMs,
        expose: [[StallController, STALL_PATH]],
        providers: [{ provide: Arrivals, useValue: arrivals }],
        // The breaker would turn a dead target into instant CircuitOpen: the sections measure the call path itself.
        circuitBreaker: { failureThreshold: Number.MAX_SAFE_INTEGER },
        relay: { trustedRelays: options.trustedRelays ?? [], ...(options.quotaPerSender ? { quotaPerSender: options.quotaPerSender } : {}) },
    };
    const peer = Peer.create(peerOptions);
    if (options.follow) {
        peer.chat.updates$.subscribe(entry => {
            if (entry.direction === 'in') print({ event: 'received', kind: 'chat', peer: options.peer, from: entry.peerId, text: entry.text });
        });
        peer.relay.received$.subscribe(envelope => print({ event: 'received', kind: 'relay', peer: options.peer, from: envelope.originalSender, text: envelope.payload.body }));
    }
    await peer.start();
    peers.set(options.peer, peer);
}

function peer(id: string): Peer {
    const found = peers.get(id);
    if (!found) throw new Error(`no peer ${id} in this process`);
    return found;
}

async function close(id: string): Promise<void> {
    const found = peers.get(id);
    peers.delete(id);
    await found?.close();
}

/** Runs `work` on every item, at most `concurrency` at a time. */
async function each<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
        while (next < items.length) await work(items[next++]);
    }));
}

interface CallOutcome {
    target: string;
    ms: number;
    /** Error code; absent when the call returned. */
    code?: string;
    /** False: the call had not ended when the harness's outer bound passed. */
    ended: boolean;
}

/** `perTarget` calls to each target at once; each is given up after `boundMs` (counted as never ended). */
async function call(request: { from: string, targets: string[], perTarget: number, action: 'echo' | 'stall', boundMs: number }): Promise<CallOutcome[]> {
    const caller = peer(request.from);
    const calls: Promise<CallOutcome>[] = [];
    for (const target of request.targets) {
        for (let i = 0; i < request.perTarget; i++) {
            const stall = caller.to(target).controller<StallApi>(STALL_PATH);
            const started = performance.now();
            const work = (request.action === 'stall' ? stall.stall(`${request.from}→${target}#${i}`) : stall.echo(i)).then(
                () => ({ target, ms: performance.now() - started, ended: true }),
                error => ({ target, ms: performance.now() - started, code: codeOf(error), ended: true }),
            );
            let timer: ReturnType<typeof setTimeout> | undefined;
            const bound = new Promise<CallOutcome>(resolve => timer = setTimeout(() => resolve({ target, ms: request.boundMs, ended: false }), request.boundMs));
            calls.push(Promise.race([work, bound]).finally(() => clearTimeout(timer)));
        }
    }
    return Promise.all(calls);
}

/**
 * Sends `count` chat messages one after the other, the text naming each one's number; an `acked` event once the
 * app's `send()` resolved (delivered, or committed to the outbox).
 */
async function sendChat(request: { from: string, to: string, first: number, count: number }): Promise<void> {
    const sender = peer(request.from);
    for (let n = request.first; n < request.first + request.count && !stopping; n++) {
        const entry = await sender.chat.send(request.to, `chat #${n}`);
        print({ event: 'acked', kind: 'chat', n, status: entry.status });
    }
}

/**
 * Stores `count` payloads for `to` at `relay`, as an app does for an offline recipient: a store that fails (relay
 * or broker away) is tried again with the same payload id, which the relay keeps once, until `retryForMs` passes.
 */
async function storeRelay(request: { from: string, relay: string, to: string, numbers: number[], retryForMs: number }): Promise<{ gaveUp: number[] }> {
    const relay = peer(request.from).to(request.relay).relay;
    const gaveUp: number[] = [];
    for (const n of request.numbers) {
        const until = performance.now() + request.retryForMs;
        for (let attempt = 0; ; attempt++) {
            if (stopping) return { gaveUp };
            try {
                await relay.store(request.to, new RelayPayload(`chaos-${n}`, 'chaos', `relay #${n}`));
                print({ event: 'acked', kind: 'relay', n });
                break;
            } catch (error) {
                if (performance.now() > until) {
                    gaveUp.push(n);
                    break;
                }
                await sleep(Math.min(2000, 100 * 2 ** attempt));
            }
        }
    }
    return { gaveUp };
}

interface SoakRequest {
    /** Every peer of the soak (all processes): targets of calls and chat. */
    ids: string[];
    /** The peers of this process, with their connect options. */
    local: ConnectOptions[];
    durationMs: number;
    pauseMs: number;
    /** One chat message in every `chatEvery` operations of a peer; the rest are calls. */
    chatEvery: number;
    /** A random local peer leaves (close) and comes back after `churnDownMs`, every `churnEveryMs`. */
    churnEveryMs: number;
    churnDownMs: number;
    callTimeoutMs: number;
}

/** Calls, chat and churn among many peers for a while; every local peer is connected again at the end. */
async function soak(request: SoakRequest): Promise<Record<string, unknown>> {
    const stats = { calls: 0, callsFailed: 0, chats: 0, chatsFailed: 0, churns: 0, reconnectFailures: 0, errors: {} as Record<string, number> };
    const failed = (error: unknown) => {
        // An untyped error says nothing by its class: keep the start of its message.
        const code = codeOf(error) === 'Error' ? `Error "${String((error as Error).message).slice(0, 60)}"` : codeOf(error);
        stats.errors[code] = (stats.errors[code] ?? 0) + 1;
    };
    const end = performance.now() + request.durationMs;
    const away = new Set<string>();
    const loops = request.local.map(async ({ peer: id }) => {
        for (let op = Math.floor(Math.random() * request.chatEvery); performance.now() < end && !stopping; op++) {
            await sleep(request.pauseMs * (0.5 + Math.random()));
            const self = peers.get(id);
            if (!self || away.has(id)) continue;
            const target = request.ids[Math.floor(Math.random() * request.ids.length)];
            if (target === id) continue;
            try {
                if (op % request.chatEvery === 0) {
                    stats.chats++;
                    await self.chat.send(target, `soak ${op}`);
                } else {
                    stats.calls++;
                    await self.to(target).controller<StallApi>(STALL_PATH, { timeout: request.callTimeoutMs }).echo(op);
                }
            } catch (error) {
                if (op % request.chatEvery === 0) stats.chatsFailed++;
                else stats.callsFailed++;
                failed(error);
            }
        }
    });
    const churn = (async () => {
        while (performance.now() + request.churnDownMs < end && !stopping) {
            await sleep(request.churnEveryMs * (0.5 + Math.random()));
            const candidates = request.local.filter(options => !away.has(options.peer));
            if (!candidates.length) continue;
            const options = candidates[Math.floor(Math.random() * candidates.length)];
            away.add(options.peer);
            stats.churns++;
            void (async () => {
                try {
                    await close(options.peer);
                    await sleep(request.churnDownMs);
                    await connect(options);
                } catch (error) {
                    stats.reconnectFailures++;
                    failed(error);
                } finally {
                    away.delete(options.peer);
                }
            })();
        }
    })();
    await Promise.all([...loops, churn]);
    while (away.size && !stopping) await sleep(50);
    // A peer whose comeback failed is connected once more, so the end state is known: every local peer online.
    for (const options of request.local) {
        if (peers.has(options.peer)) continue;
        try {
            await connect(options);
        } catch (error) {
            stats.reconnectFailures++;
            failed(error);
        }
    }
    return stats;
}

async function handle(request: any): Promise<unknown> {
    switch (request.op) {
        case 'connect':
            return connect(request.options);
        case 'connectMany':
            return each(request.options as ConnectOptions[], request.concurrency ?? 8, connect);
        case 'close':
            return close(request.peer);
        case 'closeMany': {
            // One close() that throws must not keep the others open: its error is reported, the rest go on.
            const failures: string[] = [];
            await each(request.peers as string[], 16, id => close(id).catch(error => void failures.push(`${id}: ${codeOf(error)} ${error?.message ?? ''}`)));
            return { failures };
        }
        case 'call':
            return call(request);
        case 'sendChat':
            return sendChat(request);
        case 'storeRelay':
            return storeRelay(request);
        case 'soak':
            return soak(request);
        case 'states':
            return Object.fromEntries([...peers].map(([id, p]) => [id, p.state]));
        default:
            throw new Error(`unknown op ${request.op}`);
    }
}

let input = '';
process.stdin.on('data', chunk => {
    input += chunk;
    let newline: number;
    while ((newline = input.indexOf('\n')) >= 0) {
        const line = input.slice(0, newline);
        input = input.slice(newline + 1);
        if (!line.trim()) continue;
        const request = JSON.parse(line);
        handle(request).then(
            result => print({ reply: request.id, result: result ?? null }),
            error => print({ reply: request.id, error: `${codeOf(error)}: ${error instanceof Error ? error.message : error}` }),
        );
    }
});
// allSettled and a deadline: this cannot reject, so nothing is lost by the EventEmitter ignoring the promise.
process.stdin.on('end', () => void (async () => {
    stopping = true;
    await Promise.race([Promise.allSettled([...peers.values()].map(p => p.close())), sleep(3000)]);
    process.exit(0);
})());
print({ event: 'ready' });
