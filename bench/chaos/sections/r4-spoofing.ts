import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import * as Y from 'yjs';
import { Peer, PeerOptions } from '../../../peer';
import { DeliveryReceipt, RelayEnvelope, RelayPayload } from '../../../shared/relay-api';
import { BrokerProcess } from '../broker-process';
import { RawClient } from '../raw-client';
import { ChaosRow, ChaosSection } from '../section';
import { WitnessApi, WitnessController, WitnessLog } from '../witness-controller';
import { actionBody, clientFrame, errorCode, peerFrame, replyFrame, Types } from '../wire-frames';
import { kickAndHijack } from '../multicast-attacks';

/** How long an attempt waits for a refusal or for its effect on the victim. */
const ANSWER_MS = 3000;

type Effect = 'succeeded' | 'no effect';

interface Attempt {
    name: string;
    /** Typed error code the attacker received, if any. */
    deniedWith?: string;
    effect: Effect;
    detail: string;
    /** Which audit rows count as this attempt recorded: (kind, acting peer ID, the rest of the line). */
    audited: (kind: string, actor: string, rest: string) => boolean;
    database: string;
}

const refusal = (kind: string) => kind === 'denied' || kind === 'closed' || kind === 'auth-failed';

function codeOf(error: unknown): string {
    return (error as { code?: string }).code ?? (error as Error).constructor?.name ?? String(error);
}

function hexBytes(hex: string): Uint8Array {
    return new Uint8Array(Buffer.from(hex, 'hex'));
}

async function within<T>(work: Promise<T>, ms: number): Promise<T | 'timeout'> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = await Promise.race([work, new Promise<'timeout'>(resolve => timer = setTimeout(() => resolve('timeout'), ms))]);
    clearTimeout(timer);
    return result;
}

/** A raw client registered under `peerId` (Deepkit's own PeerRegister message). */
async function rawAttacker(url: string, peerId: string): Promise<RawClient> {
    const client = await RawClient.open(url, { handshake: true, timeoutMs: ANSWER_MS });
    const answer = await client.request(clientFrame(client.takeId(), Types.PeerRegister, { id: peerId }), ANSWER_MS);
    if (answer?.type !== Types.Ack) throw new Error(`could not register ${peerId}: ${answer ? errorCode(answer) : 'no answer'}`);
    return client;
}

/**
 * Resolves once the broker has handled every frame the client sent before: it answers frames of one connection in
 * order, so the answer to a fresh ClientId request comes after any refusal of the earlier ones.
 */
async function barrier(client: RawClient): Promise<void> {
    await client.request(clientFrame(client.takeId(), Types.ClientId), ANSWER_MS);
}

/** Error codes the client received for frames with these ids. */
function refusalsFor(client: RawClient, ids: Set<number>): { codes: string[], stop(): void } {
    const codes: string[] = [];
    const stop = client.onFrame(frame => {
        if (frame.type === Types.Error && ids.has(frame.id)) codes.push(errorCode(frame));
    });
    return { codes, stop };
}

function witnessPeer(url: string, id: string, log: WitnessLog, extra: Partial<PeerOptions> = {}): Promise<Peer> {
    return Peer.connect({
        url, id, reconnect: false, callTimeoutMs: 10_000,
        expose: [[WitnessController, 'chaos/witness']],
        providers: [{ provide: WitnessLog, useValue: log }],
        ...extra,
    });
}

async function attemptsInOpenMode(url: string, database: string): Promise<Attempt[]> {
    const attempts: Attempt[] = [];
    const bobLog = new WitnessLog();
    const carolLog = new WitnessLog();
    const bob = await witnessPeer(url, 'bob', bobLog);
    const alice = await witnessPeer(url, 'alice', new WitnessLog());
    const carol = await witnessPeer(url, 'carol', carolLog);
    const peers: Peer[] = [bob, alice, carol];
    const raws: RawClient[] = [];
    try {
        const witnessOfBob = alice.to('bob').controller<WitnessApi>('chaos/witness');
        await witnessOfBob.record('alice-real');
        const aliceConnection = hexBytes((await alice.broker.whoami()).connectionId);

        // 1. A peer frame whose source is alice's connection, not the sender's.
        {
            const mallory = await rawAttacker(url, 'mallory-source');
            raws.push(mallory);
            const frame = peerFrame(mallory.takeId(), aliceConnection, 'bob', Types.Action, actionBody('chaos/witness', 'record', ['forged-source']));
            const refused = refusalsFor(mallory, new Set([frame.readUInt32LE(5)]));
            mallory.send(frame);
            await barrier(mallory);
            // If the broker forwarded it, bob runs it (and answers alice); wait for that a while.
            const arrived = refused.codes.length ? 'skipped' : await within(bobLog.arrival('forged-source'), ANSWER_MS);
            refused.stop();
            const seen = bobLog.find('forged-source');
            attempts.push({
                name: 'forged source on a peer frame (alice\'s connection id)', deniedWith: refused.codes[0], database,
                effect: seen ? 'succeeded' : 'no effect',
                detail: seen ? `bob ran it as caller "${seen.caller}"` : arrived === 'timeout' ? 'never reached bob' : 'refused before bob',
                audited: (kind, actor) => refusal(kind) && actor === 'mallory-source',
            });
        }

        // 2. A client-written CallerIdentity naming alice, then a call: whom does bob believe?
        {
            const mallory = await rawAttacker(url, 'mallory-identity');
            raws.push(mallory);
            const forged = peerFrame(mallory.takeId(), mallory.id, 'bob', Types.CallerIdentity, { peerId: 'alice', session: 'anonymous' });
            const refused = refusalsFor(mallory, new Set([forged.readUInt32LE(5)]));
            mallory.send(forged);
            const answer = await mallory.request(peerFrame(mallory.takeId(), mallory.id, 'bob', Types.Action, actionBody('chaos/witness', 'record', ['forged-identity'])), ANSWER_MS);
            refused.stop();
            const believed = bobLog.find('forged-identity')?.caller;
            attempts.push({
                name: 'client-written CallerIdentity naming another peer', deniedWith: refused.codes[0], database,
                effect: believed === 'alice' ? 'succeeded' : 'no effect',
                detail: believed !== undefined ? `bob saw the next call as from "${believed}"` : `the next call ${answer?.type === Types.Error ? `was refused (${errorCode(answer)})` : 'did not reach bob'}`,
                audited: (kind, actor) => refusal(kind) && actor === 'mallory-identity',
            });
        }

        // 3. Taking over bob's live ID without its reclaim secret.
        {
            let deniedWith: string | undefined;
            let thief: Peer | undefined;
            try {
                thief = await Peer.connect({ url, id: 'bob', reconnect: false, callTimeoutMs: ANSWER_MS });
                peers.push(thief);
            } catch (error) {
                deniedWith = codeOf(error);
            }
            attempts.push({
                name: 'steal a live ID (open mode, no reclaim secret)', deniedWith, database,
                effect: thief ? 'succeeded' : 'no effect', detail: thief ? 'the thief registered as "bob"' : 'bob kept its ID',
                audited: (kind, actor, rest) => refusal(kind) && actor === '-' && rest.includes('→ bob '),
            });
        }

        // 4. Replies to calls the sender never received: carol waits on bob; mallory answers in bob's place.
        {
            const held = carol.to('bob').controller<WitnessApi>('chaos/witness').hold();
            await bobLog.arrival('hold');
            const carolConnection = hexBytes((await carol.broker.whoami()).connectionId);
            const mallory = await rawAttacker(url, 'mallory-reply');
            raws.push(mallory);
            // Message ids are small counters: answering the first thousand covers the pending call.
            const ids = new Set<number>();
            for (let id = 0; id < 1000; id++) {
                ids.add(id);
                mallory.send(replyFrame(id, mallory.id, carolConnection, Types.ResponseActionSimple, { v: 'forged' }));
            }
            const refused = refusalsFor(mallory, ids);
            await barrier(mallory);
            const early = await within(held, ANSWER_MS / 3);
            bobLog.release();
            const value = early === 'timeout' ? await within(held.catch(error => `error ${codeOf(error)}`), ANSWER_MS) : early;
            refused.stop();
            attempts.push({
                name: 'reply to a call it never received', deniedWith: refused.codes[0], database,
                effect: value === 'forged' ? 'succeeded' : 'no effect', detail: `carol's pending call ended with ${JSON.stringify(value)}`,
                audited: (kind, actor) => refusal(kind) && actor === 'mallory-reply',
            });
        }

        const mallory = await Peer.connect({ url, id: 'mallory-relay', reconnect: false, callTimeoutMs: ANSWER_MS });
        peers.push(mallory);

        // 5. relay.deliver naming bob as original sender.
        {
            const received = new Promise<RelayEnvelope>(resolve => alice.relay.received$.subscribe(resolve));
            let deniedWith: string | undefined;
            try {
                await mallory.to('alice').relay.deliver(new RelayEnvelope(new RelayPayload('chaos-1', 'chat', 'it is me, bob'), 'bob', 'alice', 'mallory-relay'));
            } catch (error) {
                deniedWith = codeOf(error);
            }
            const envelope = deniedWith ? undefined : await within(received, ANSWER_MS);
            const accepted = envelope && envelope !== 'timeout' && envelope.originalSender === 'bob';
            attempts.push({
                name: 'relay.deliver naming another original sender', deniedWith, database,
                effect: accepted ? 'succeeded' : 'no effect',
                detail: accepted ? `alice received it as from "bob" (via "${(envelope as RelayEnvelope).via}")` : 'alice did not accept it',
                audited: (kind, actor) => refusal(kind) && actor === 'mallory-relay',
            });
        }

        // 6. A delivery receipt for a payload alice never sent through mallory.
        {
            const receipts = new Promise<DeliveryReceipt>(resolve => alice.relay.receipts$.subscribe(resolve));
            let deniedWith: string | undefined;
            try {
                await mallory.to('alice').relay.receipt(new DeliveryReceipt('never-sent', 'bob', new Date, 'mallory-relay'));
            } catch (error) {
                deniedWith = codeOf(error);
            }
            const receipt = deniedWith ? undefined : await within(receipts, ANSWER_MS);
            const accepted = receipt && receipt !== 'timeout';
            attempts.push({
                name: 'receipt for a payload not delivered to the sender', deniedWith, database,
                effect: accepted ? 'succeeded' : 'no effect',
                detail: accepted ? 'alice\'s receipts$ announced the delivery' : 'alice ignored it',
                audited: (kind, actor) => refusal(kind) && actor === 'mallory-relay',
            });
        }

        // 7. Opening a document alice edits with bob only.
        {
            const document = await alice.collab.open('chaos-plans', { collaborators: ['bob'] });
            document.text.insert(0, 'secret plans');
            let deniedWith: string | undefined;
            let text = '';
            try {
                const answer = await mallory.to('alice').collab.sync('chaos-plans', Y.encodeStateVector(new Y.Doc()));
                const copy = new Y.Doc();
                Y.applyUpdate(copy, answer.update);
                text = copy.getText('content').toString();
            } catch (error) {
                deniedWith = codeOf(error);
            }
            attempts.push({
                name: 'open another peer\'s collab document', deniedWith, database,
                effect: text.includes('secret') ? 'succeeded' : 'no effect',
                detail: text ? `mallory read ${JSON.stringify(text)}` : 'mallory read nothing',
                audited: (kind, actor) => refusal(kind) && actor === 'mallory-relay',
            });
        }

        // 8. Kick and hijack (issue 18): a multicast naming a victim 4× with a 10 MiB body, to overflow its outgoing
        //    buffer and get it closed as a slow consumer; then a second connection registers the victim's ID.
        {
            const kick = await kickAndHijack(url, { bodyBytes: 10 * 1024 * 1024, timeoutMs: 30_000, victimId: 'kick-victim' });
            const hijacked = kick.hijack === 'registered';
            attempts.push({
                name: 'kick a peer off with one multicast (4× its ID, 10 MiB), then take its ID', deniedWith: hijacked ? undefined : kick.hijack, database,
                effect: hijacked || kick.victimClosed !== 'open' ? 'succeeded' : 'no effect',
                detail: `victim ${kick.victimClosed}; multicast: ${kick.attack}; the thief's registration: ${kick.hijack}`,
                audited: (kind, actor, rest) => refusal(kind) && rest.includes('kick-victim'),
            });
        }
    } finally {
        for (const raw of raws) raw.terminate();
        await Promise.all(peers.map(peer => within(peer.close(), 5000)));
    }
    return attempts;
}

async function openModeAttempts(directory: string): Promise<Attempt[]> {
    const database = join(directory, 'broker.sqlite');
    const broker = await BrokerProcess.start(database);
    try {
        return await attemptsInOpenMode(broker.url, database);
    } finally {
        // Stopping flushes the audit trail to the file.
        await broker.stop();
    }
}

async function attemptsInTokenMode(directory: string): Promise<Attempt[]> {
    const database = join(directory, 'token-broker.sqlite');
    const token = async (name: string, peer: string) => {
        const { code, output } = await BrokerProcess.command(database, ['token:create', name, '--peer', peer]);
        const found = /^(sbt_\S+)$/m.exec(output);
        if (code !== 0 || !found) throw new Error(`token:create ${name} failed (${code}):\n${output}`);
        return found[1];
    };
    const ownerToken = await token('owner', 'victim');
    const thiefToken = await token('thief', '*');
    const broker = await BrokerProcess.start(database, ['--auth', 'token']);
    const peers: Peer[] = [];
    try {
        peers.push(await Peer.connect({ url: broker.url, id: 'victim', token: ownerToken, reconnect: false }));
        let deniedWith: string | undefined;
        try {
            peers.push(await Peer.connect({ url: broker.url, id: 'victim', token: thiefToken, reconnect: false, callTimeoutMs: ANSWER_MS }));
        } catch (error) {
            deniedWith = codeOf(error);
        }
        return [{
            name: 'steal a live ID (token mode, another token granted "*")', deniedWith, database,
            effect: peers.length > 1 ? 'succeeded' : 'no effect', detail: peers.length > 1 ? 'the thief registered as "victim"' : 'the owner kept its ID',
            audited: (kind, actor, rest) => refusal(kind) && rest.includes('→ victim ') && rest.includes('(session thief)'),
        }];
    } finally {
        await Promise.all(peers.map(peer => within(peer.close(), 5000)));
        await broker.stop();
    }
}

/** The audit trail as the `audit` command prints it: [kind, acting peer, rest of the line] per row. */
async function auditRows(database: string): Promise<[string, string, string][]> {
    const { code, output } = await BrokerProcess.command(database, ['audit', '--limit', '10000']);
    if (code !== 0) throw new Error(`audit failed (${code}):\n${output}`);
    return output.split('\n')
        .map(line => /^\S+Z\s+(\S+)\s+(\S+)\s+(.*)$/.exec(line.trim()))
        .filter((match): match is RegExpExecArray => !!match)
        .map(match => [match[1], match[2], match[3] + ' ']);
}

/** `denied → bob  ACCESS_DENIED` for one row; the first two distinct rows and a count for many. */
function summarise(rows: [string, string, string][]): string {
    const distinct = [...new Set(rows.map(([kind, , rest]) => `${kind} ${rest.split('  (session')[0].trim()}`))];
    return distinct.slice(0, 2).join('; ') + (rows.length > 2 ? ` (${rows.length} rows)` : '');
}

export const section: ChaosSection = {
    id: 'R4',
    title: 'spoofing',
    async run(context) {
        const directory = mkdtempSync(join(tmpdir(), 'switchboard-chaos-'));
        try {
            // The two brokers are independent: their (slow) CLI start-ups and token:create runs overlap.
            const [inOpenMode, inTokenMode] = await Promise.all([openModeAttempts(directory), attemptsInTokenMode(directory)]);
            const attempts = [...inOpenMode, ...inTokenMode];
            const databases = [...new Set(attempts.map(attempt => attempt.database))];
            const trails = new Map(await Promise.all(databases.map(async database => [database, await auditRows(database)] as const)));
            const rows: ChaosRow[] = attempts.map(attempt => {
                const recorded = trails.get(attempt.database)!.filter(([kind, actor, rest]) => attempt.audited(kind, actor, rest));
                context.log(`${attempt.name}: ${attempt.effect}${attempt.deniedWith ? `, denied ${attempt.deniedWith}` : ''}`);
                return {
                    cells: {
                        'attempt': attempt.name,
                        'denied?': attempt.deniedWith ? `yes: ${attempt.deniedWith}` : 'no typed error',
                        'audited?': recorded.length ? `yes: ${summarise(recorded)}` : 'no',
                        'outcome': attempt.effect === 'succeeded' ? `**SUCCEEDED**: ${attempt.detail}` : `held: ${attempt.detail}`,
                    },
                    failed: attempt.effect === 'succeeded' ? { why: `spoofing succeeded: ${attempt.name} (${attempt.detail})` } : undefined,
                    data: { name: attempt.name, deniedWith: attempt.deniedWith, effect: attempt.effect, detail: attempt.detail, audit: recorded },
                };
            });
            return {
                columns: ['attempt', 'denied?', 'audited?', 'outcome'],
                rows,
                notes: [
                    'Brokers: `server/main.ts start --port 0` on a SQLite file in a temp directory (open mode; token mode for the token theft); victims are SDK peers serving a witness controller that records the caller the broker vouched for.',
                    'denied? = the attacker got an error with a stable code. audited? = rows of kind denied/closed/auth-failed for the attacker in the `audit` command\'s output. outcome = what the victim saw.',
                ],
            };
        } finally {
            rmSync(directory, { recursive: true, force: true });
        }
    },
};
