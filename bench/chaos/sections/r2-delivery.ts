import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { BrokerProcess } from '../broker-process';
import { HostEvent, PeerHost } from '../peer-host-client';
import { ChaosContext, ChaosRow, ChaosSection } from '../section';

type Victim = 'sender' | 'relay' | 'broker';

interface Sizes {
    /** Messages per channel (chat outbox, relay). */
    messages: number;
    /** Kills during the sending, in order; each at a random point of the progress. A group is killed at once. */
    kills: Victim[][];
    /** How long the recipient may go without receiving anything new before the count is taken. */
    quietMs: number;
}

const full: Sizes = {
    messages: 500,
    kills: [['sender'], ['relay'], ['broker'], ['relay'], ['sender'], ['broker'], ['sender', 'relay', 'broker']],
    quietMs: 15_000,
};
const quick: Sizes = { messages: 30, kills: [['sender', 'relay', 'broker']], quietMs: 5000 };

/** The sender's calls give up after this (the outbox keeps the message); short, so sending goes on during outages. */
const CALL_TIMEOUT_MS = 5000;
/** A relay store is retried (same payload id) for this long before the app gives up on the message. */
const STORE_RETRY_MS = 120_000;
/** Process start-ups (ts-node) on a busy machine. */
const START_TIMEOUT_MS = 90_000;
/** The recipient's wait for deliveries after it came online, at most. */
const DELIVERY_LIMIT_MS = 180_000;

type Channel = 'chat' | 'relay';

/** What the sending app knows: which messages were acknowledged to it, which were in flight at a kill. */
class Ledger {
    readonly acked = { chat: new Set<number>(), relay: new Set<number>() };
    /** Chat messages whose send() had not resolved when the sender was killed: delivered once or never are both fine. */
    readonly inFlight = new Set<number>();
    /** Chat numbers handed to a sender process so far. */
    nextChat = 0;
    gaveUp: number[] = [];

    progress(total: number): number {
        return (this.acked.chat.size + this.acked.relay.size) / (2 * total);
    }
}

interface Stage {
    directory: string;
    brokerDatabase: string;
    broker: BrokerProcess;
    sender: PeerHost;
    relay: PeerHost;
}

const storage = (stage: Stage, peer: string) => join(stage.directory, `${peer}.sqlite`);

async function connectSender(stage: Stage): Promise<void> {
    await stage.sender.request('connect', { options: { peer: 'alice', url: stage.broker.url, storage: storage(stage, 'alice'), callTimeoutMs: CALL_TIMEOUT_MS, trustedRelays: ['relay'] } }, 60_000);
}

async function connectRelay(stage: Stage): Promise<void> {
    await stage.relay.request('connect', { options: { peer: 'relay', url: stage.broker.url, storage: storage(stage, 'relay'), callTimeoutMs: CALL_TIMEOUT_MS, quotaPerSender: 1_000_000 } }, 60_000);
}

/**
 * (Re)starts the sending in the sender process: chat from the next number not handed out yet, relay stores for every
 * number not acknowledged yet (a store in flight at a kill is stored again with the same id: the relay keeps it once).
 * @returns when both loops ended, or the process died
 */
function startSending(stage: Stage, ledger: Ledger, total: number): Promise<unknown> {
    const sender = stage.sender;
    const stop = sender.onEvent((event: HostEvent) => {
        if (event.event !== 'acked') return;
        ledger.acked[event.kind as Channel].add(event.n);
        if (event.kind === 'chat') ledger.nextChat = Math.max(ledger.nextChat, event.n + 1);
    });
    const first = ledger.nextChat;
    const relayNumbers = Array.from({ length: total }, (_, n) => n).filter(n => !ledger.acked.relay.has(n));
    const chat = sender.request('sendChat', { from: 'alice', to: 'bob', first, count: total - first }, DELIVERY_LIMIT_MS + STORE_RETRY_MS);
    const relay = sender.request<{ gaveUp: number[] }>('storeRelay', { from: 'alice', relay: 'relay', to: 'bob', numbers: relayNumbers, retryForMs: STORE_RETRY_MS }, DELIVERY_LIMIT_MS + STORE_RETRY_MS)
        .then(result => ledger.gaveUp.push(...result.gaveUp));
    return Promise.allSettled([chat, relay]).finally(stop);
}

/** Resolves once `progress()` reaches `fraction` (or after `limitMs`, when the sending is stuck). */
function progressReaches(ledger: Ledger, total: number, fraction: number, limitMs: number): Promise<void> {
    return new Promise(resolve => {
        const started = performance.now();
        const check = () => {
            if (ledger.progress(total) >= fraction || performance.now() - started > limitMs) return resolve();
            setTimeout(check, 5);
        };
        check();
    });
}

/** @returns the restarted sender's sending, wrapped: an awaited promise of a promise would wait for the sending too */
async function kill(stage: Stage, ledger: Ledger, victims: Victim[], total: number, context: ChaosContext): Promise<{ sending?: Promise<unknown> }> {
    context.log(`kill -9 ${victims.join(' + ')} at ${(ledger.progress(total) * 100).toFixed(0)}% acknowledged`);
    await Promise.all(victims.map(victim => victim === 'broker' ? stage.broker.kill() : stage[victim].kill()));
    if (victims.includes('sender')) {
        // The message whose send() was running is neither acknowledged nor sent again (send() has no idempotency key).
        if (ledger.nextChat < total) ledger.inFlight.add(ledger.nextChat++);
    }
    const restarts: Promise<unknown>[] = [];
    if (victims.includes('broker')) {
        restarts.push(BrokerProcess.start(stage.brokerDatabase, ['--port', String(stage.broker.port)], START_TIMEOUT_MS).then(broker => stage.broker = broker));
    }
    const sender = victims.includes('sender') ? PeerHost.start('sender', START_TIMEOUT_MS).then(host => stage.sender = host) : undefined;
    const relay = victims.includes('relay') ? PeerHost.start('relay', START_TIMEOUT_MS).then(host => stage.relay = host) : undefined;
    await Promise.all([...restarts, sender, relay]);
    // Same storage files: the outbox, the relay's held payloads and the reclaim secrets survive.
    await Promise.all([sender && connectSender(stage), relay && connectRelay(stage)]);
    return { sending: sender ? startSending(stage, ledger, total) : undefined };
}

interface Delivery {
    channel: Channel;
    acked: number;
    inFlight: number;
    inFlightDelivered: number;
    exactlyOnce: number;
    lost: number[];
    duplicated: number[];
    outOfOrder: number;
    unexpected: number;
    gaveUp: number;
}

function analyse(channel: Channel, received: number[], ledger: Ledger): Delivery {
    const times = new Map<number, number>();
    for (const n of received) times.set(n, (times.get(n) ?? 0) + 1);
    const acked = ledger.acked[channel];
    const inFlight = channel === 'chat' ? ledger.inFlight : new Set<number>();
    let outOfOrder = 0;
    let highest = -1;
    const seen = new Set<number>();
    for (const n of received) {
        if (seen.has(n)) continue;
        seen.add(n);
        if (n < highest) outOfOrder++;
        highest = Math.max(highest, n);
    }
    return {
        channel,
        acked: acked.size,
        inFlight: inFlight.size,
        inFlightDelivered: [...inFlight].filter(n => times.has(n)).length,
        exactlyOnce: [...times.values()].filter(count => count === 1).length,
        lost: [...acked].filter(n => !times.has(n)).sort((a, b) => a - b),
        duplicated: [...times].filter(([, count]) => count > 1).map(([n]) => n),
        outOfOrder,
        unexpected: [...times.keys()].filter(n => !acked.has(n) && !inFlight.has(n)).length,
        gaveUp: channel === 'relay' ? ledger.gaveUp.length : 0,
    };
}

async function runDelivery(context: ChaosContext): Promise<{ deliveries: Delivery[], kills: string[], seconds: number }> {
    const sizes = context.quick ? quick : full;
    const total = sizes.messages;
    const directory = mkdtempSync(join(tmpdir(), 'switchboard-chaos-r2-'));
    const brokerDatabase = join(directory, 'broker.sqlite');
    const ledger = new Ledger();
    const started: { broker?: BrokerProcess, hosts: PeerHost[] } = { hosts: [] };
    let stage: Stage | undefined;
    try {
        const [broker, sender, relay] = await Promise.all([
            BrokerProcess.start(brokerDatabase, [], START_TIMEOUT_MS).then(b => started.broker = b),
            ...['sender', 'relay'].map(name => PeerHost.start(name, START_TIMEOUT_MS).then(host => (started.hosts.push(host), host))),
        ]) as [BrokerProcess, PeerHost, PeerHost];
        stage = { directory, brokerDatabase, broker, sender, relay };
        await Promise.all([connectSender(stage), connectRelay(stage)]);
        context.log(`broker, sender and relay up; bob offline; sending ${total} chat + ${total} relay messages`);

        const sendingStarted = performance.now();
        const sendings: Promise<unknown>[] = [startSending(stage, ledger, total)];
        // Random points, in increasing order, spread over the sending.
        const points = sizes.kills.map(() => 0.05 + Math.random() * 0.85).sort((a, b) => a - b);
        const kills: string[] = [];
        for (const [i, victims] of sizes.kills.entries()) {
            await progressReaches(ledger, total, points[i], 120_000);
            kills.push(`${victims.join('+')} at ${(ledger.progress(total) * 100).toFixed(0)}%`);
            const { sending } = await kill(stage, ledger, victims, total, context);
            if (sending) sendings.push(sending);
        }
        await Promise.all(sendings);
        const sendSeconds = (performance.now() - sendingStarted) / 1000;
        context.log(`sending over in ${sendSeconds.toFixed(1)} s: ${ledger.acked.chat.size} chat, ${ledger.acked.relay.size} relay acknowledged; bob comes online`);

        const received: Record<Channel, number[]> = { chat: [], relay: [] };
        let lastArrival = performance.now();
        // bob is never killed: it lives in the sender's (last) process, which spares a start-up.
        const recipient = stage.sender;
        recipient.onEvent(event => {
            if (event.event !== 'received' || event.from !== 'alice') return;
            const n = Number(/#(\d+)$/.exec(event.text)?.[1]);
            if (Number.isFinite(n)) received[event.kind as Channel].push(n);
            lastArrival = performance.now();
        });
        const online = performance.now();
        await recipient.request('connect', { options: { peer: 'bob', url: stage.broker.url, storage: storage(stage, 'bob'), callTimeoutMs: CALL_TIMEOUT_MS, trustedRelays: ['relay'], follow: true } }, 60_000);
        // Everything acknowledged arrived, and then nothing more (a duplicate) for a while; or silence; or the limit.
        await new Promise<void>(resolve => {
            const check = () => {
                const complete = (['chat', 'relay'] as Channel[]).every(channel => [...ledger.acked[channel]].every(n => received[channel].includes(n)));
                const quietFor = performance.now() - lastArrival;
                if ((complete && quietFor > 2000) || quietFor > sizes.quietMs || performance.now() - online > DELIVERY_LIMIT_MS) return resolve();
                setTimeout(check, 100);
            };
            check();
        });
        context.log(`bob received ${received.chat.length} chat, ${received.relay.length} relay`);
        return { deliveries: [analyse('chat', received.chat, ledger), analyse('relay', received.relay, ledger)], kills, seconds: (lastArrival - online) / 1000 };
    } finally {
        const hosts = stage ? [stage.sender, stage.relay] : started.hosts;
        await Promise.all(hosts.map(host => host.kill()));
        await (stage?.broker ?? started.broker)?.kill();
        rmSync(directory, { recursive: true, force: true });
    }
}

const list = (numbers: number[]) => numbers.length ? `**${numbers.length}**${numbers.length <= 8 ? ` (#${numbers.join(', #')})` : ''}` : '0';

export const section: ChaosSection = {
    id: 'R2',
    title: 'delivery through kill -9',
    async run(context) {
        const sizes = context.quick ? quick : full;
        const { deliveries, kills, seconds } = await runDelivery(context);
        const rows: ChaosRow[] = deliveries.map(delivery => {
            const problems = [
                delivery.lost.length && `${delivery.lost.length} acknowledged message(s) lost`,
                delivery.duplicated.length && `${delivery.duplicated.length} message(s) delivered more than once`,
            ].filter(Boolean);
            return {
                cells: {
                    'channel': delivery.channel === 'chat' ? 'chat outbox (`peer.chat.send`)' : 'relay store-and-forward (`to(relay).relay.store`)',
                    'acknowledged to the sender': String(delivery.acked) + (delivery.gaveUp ? ` (${delivery.gaveUp} given up after ${STORE_RETRY_MS / 1000} s of retries)` : ''),
                    'in flight at a sender kill (delivered)': delivery.channel === 'chat' ? `${delivery.inFlight} (${delivery.inFlightDelivered})` : 'stored again, same id',
                    'delivered exactly once': String(delivery.exactlyOnce),
                    'lost': list(delivery.lost),
                    'duplicated': list(delivery.duplicated),
                    'out of order': String(delivery.outOfOrder),
                },
                failed: problems.length ? { why: `${delivery.channel}: ${problems.join(', ')}` } : undefined,
                data: delivery,
            };
        });
        return {
            columns: ['channel', 'acknowledged to the sender', 'in flight at a sender kill (delivered)', 'delivered exactly once', 'lost', 'duplicated', 'out of order'],
            rows,
            notes: [
                `${sizes.messages} messages per channel from "alice" to "bob" while bob is offline (never connected yet); each peer in its own process with a SQLite file; the broker on a SQLite file too. bob trusts "relay" (\`relay.trustedRelays\`).`,
                `kill -9 during the sending, at random points: ${kills.join('; ')}. A killed process is started again on the same files (the broker on the same port); the sending goes on where the app knew it was: chat from the next number (the one whose send() was running is not sent again), relay stores for every number not acknowledged (same payload id).`,
                `Then bob comes online and counts what its app sees (\`chat.updates$\` incoming, \`relay.received$\`) until everything acknowledged arrived and 2 s passed, or ${sizes.quietMs / 1000} s of silence; the last arrival came ${seconds.toFixed(1)} s after bob started connecting. bob runs in the sender's last process (it is never killed).`,
                'Lost = acknowledged to the sending app, never delivered. Duplicated = delivered to the app more than once. Out of order = arrived after a message sent later. `--strict` fails on lost or duplicated.',
            ],
        };
    },
};
