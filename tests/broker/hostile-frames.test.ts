import { RpcTypes } from '@deepkit/rpc';
import { serializeBSONWithoutOptimiser } from '@deepkit/bson';
import { api, collect, echoOf, eventually, Resources } from '../helpers';
import { RawClient } from '../../bench/chaos/raw-client';
import { actionBody, bson, clientFrame, frame, peerFrame, peerRoute, ReceivedFrame, Types } from '../../bench/chaos/wire-frames';
import { AuditLog } from '../../server/registry/audit-log';
import { BrokerStats } from '../../server/stats';
import { Route, SwitchboardFrame } from '../../shared/wire';

/** The stable code of a plain (stock-decodable) error frame: its message starts with it. */
function codeOf(answer: ReceivedFrame | undefined): string | undefined {
    if (!answer || answer.type !== Types.Error) return;
    return String(answer.body?.message ?? '').split(':')[0];
}

async function rawClient(url: string): Promise<RawClient> {
    return RawClient.open(url, { handshake: true, timeoutMs: 10_000 });
}

/** A BSON document of `bytes` whose first string element claims `claimed` bytes. */
function lyingStringBody(claimed: number): Uint8Array {
    const body = Buffer.from(serializeBSONWithoutOptimiser({ controller: 'switchboard/broker', method: 'whoami', args: {} }));
    // Layout: <int32 size> 0x02 'controller\0' <int32 length> ... : the string's length starts at 4 + 1 + 11.
    body.writeInt32LE(claimed, 4 + 1 + 'controller'.length + 1);
    return body;
}

describe('hostile frames reach no Deepkit reader unchecked', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('a peer frame whose peer ID has no terminating NUL gets MalformedMessage, and the broker keeps serving', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        const mallory = resources.add(await rawClient(broker.url), c => c.terminate());

        // 27 bytes: the header, the source and "b", no NUL, and the frame ends (its size field says 27).
        const truncated = frame({ id: 7, route: Route.peer, routeData: peerRoute(mallory.id, 'b', false), type: Types.Action }).subarray(0, 27);
        truncated.writeUInt32LE(27, 0);
        expect(codeOf(await mallory.request(truncated, 10_000))).toBe('MALFORMED_MESSAGE');

        const alice = await resources.servingPeer(broker.url, 'alice');
        expect(await echoOf(alice.client, 'bob').echo('still up')).toBe('still up');
        expect((await fetch(broker.httpUrl + '/health')).status).toBe(200);
    });

    it('target IDs in headers are validated: too long, or with a newline, is MalformedMessage with a short answer', async () => {
        const broker = await resources.broker();
        const mallory = resources.add(await rawClient(broker.url), c => c.terminate());
        const long = 'x'.repeat(1024 * 1024);
        for (const target of [long, 'bob\nforged audit line']) {
            const request = peerFrame(mallory.takeId(), mallory.id, target, Types.ActionType, actionBody('test/echo', 'echo'));
            const answer = await mallory.request(request, 10_000);
            expect(codeOf(answer)).toBe('MALFORMED_MESSAGE');
            expect(JSON.stringify(answer!.body).length).toBeLessThan(1000);
        }
        const audit = await broker.app.get(AuditLog).query({});
        expect(audit.some(row => (row.target ?? '').includes('\n') || (row.target ?? '').length > 64)).toBe(false);
    });

    it('a BSON length claiming a gigabyte is refused before any decoder walks it', async () => {
        const broker = await resources.broker();
        const mallory = resources.add(await rawClient(broker.url), c => c.terminate());
        const lying = frame({ id: mallory.takeId(), route: Route.client, type: Types.Action, body: lyingStringBody(2 ** 30) });
        expect(codeOf(await mallory.request(lying, 10_000))).toBe('MALFORMED_MESSAGE');
        // An honest call on the same connection is answered.
        const whoami = await mallory.request(clientFrame(mallory.takeId(), Types.Action, actionBody('switchboard/broker', 'whoami')), 10_000);
        expect(whoami?.type).toBe(RpcTypes.ResponseActionSimple);
    });

    it('chunks that add up past their declared total are refused and not held', async () => {
        const broker = await resources.broker();
        const mallory = resources.add(await rawClient(broker.url), c => c.terminate());
        const id = mallory.takeId();
        const first = await mallory.request(clientFrame(id, Types.Chunk, { seq: 0, total: 100, v: new Uint8Array(80) }), 10_000);
        expect(first?.type).toBe(RpcTypes.ChunkAck);
        const second = await mallory.request(clientFrame(id, Types.Chunk, { seq: 1, total: 100, v: new Uint8Array(80) }), 10_000);
        expect(codeOf(second)).toBe('MALFORMED_MESSAGE');
        // The message is forgotten: a chunk that would continue it is refused as out of order.
        const third = await mallory.request(clientFrame(id, Types.Chunk, { seq: 2, total: 100, v: new Uint8Array(10) }), 10_000);
        expect(codeOf(third)).toBe('MALFORMED_MESSAGE');
    });

    it('chunks count against the rate limit like every other frame', async () => {
        const broker = await resources.broker({ messagesPerSecond: 5 });
        const mallory = resources.add(await rawClient(broker.url), c => c.terminate());
        const codes: (string | undefined)[] = [];
        for (let seq = 0; seq < 20; seq++) {
            const answer = await mallory.request(clientFrame(mallory.takeId(), Types.Chunk, { seq: 0, total: 1000, v: new Uint8Array(10) }), 10_000);
            codes.push(answer?.type === RpcTypes.ChunkAck ? 'ack' : codeOf(answer));
        }
        expect(codes).toContain('RATE_LIMITED');
    });

    it('a flood of refused frames becomes a few audit rows, not one per frame', async () => {
        const broker = await resources.broker({ messagesPerSecond: 5 });
        const mallory = resources.add(await rawClient(broker.url), c => c.terminate());
        const refused = new Promise<void>(resolve => {
            let count = 0;
            mallory.onFrame(frame => {
                if (codeOf(frame) === 'RATE_LIMITED' && ++count === 200) resolve();
            });
        });
        for (let i = 0; i < 300; i++) mallory.send(clientFrame(mallory.takeId(), Types.Ping));
        await refused;
        // The connection's last window is written when it closes.
        const lastWindow = collect(broker.app.get(AuditLog).recorded, 1, row => row.kind === 'denied' && /more in/.test(row.reason ?? ''));
        mallory.terminate();
        await mallory.closed;
        await lastWindow;
        const rows = (await broker.app.get(AuditLog).query({ kind: 'denied' })).filter(row => row.reason?.startsWith('RATE_LIMITED'));
        expect(rows.length).toBeLessThan(10);
        const counted = rows.reduce((sum, row) => sum + 1 + Number(/\+(\d+) more/.exec(row.reason ?? '')?.[1] ?? 0), 0);
        expect(counted).toBeGreaterThanOrEqual(200);
    });

    it('a client may not write the broker’s own frame types: a forged CallerIdentity is refused, audited, and fools nobody', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        await resources.servingPeer(broker.url, 'alice');
        const mallory = resources.add(await rawClient(broker.url), c => c.terminate());
        const registered = await mallory.request(clientFrame(mallory.takeId(), Types.PeerRegister, { id: 'mallory' }), 10_000);
        expect(registered?.type).toBe(RpcTypes.Ack);

        const forged = peerFrame(mallory.takeId(), mallory.id, 'bob', Types.CallerIdentity, { peerId: 'alice', session: 'alice' });
        const refusal = await mallory.request(forged, 10_000);
        expect(codeOf(refusal)).toBe('ACCESS_DENIED');
        const gone = await mallory.request(peerFrame(mallory.takeId(), mallory.id, 'bob', Types.CallerGone), 10_000);
        expect(codeOf(gone)).toBe('ACCESS_DENIED');
        const drain = await mallory.request(peerFrame(mallory.takeId(), mallory.id, 'bob', SwitchboardFrame.Drain), 10_000);
        expect(codeOf(drain)).toBe('ACCESS_DENIED');

        const answer = await mallory.request(peerFrame(mallory.takeId(), mallory.id, 'bob', Types.Action, actionBody('test/echo', 'whoCalls')), 10_000);
        expect(answer?.body?.v).toEqual({ peerId: 'mallory', session: 'anonymous' });
        const denials = await broker.app.get(AuditLog).query({ kind: 'denied', peerId: 'mallory' });
        expect(denials.map(row => row.reason)).toContain('ACCESS_DENIED');
    });

    it('route types other than client, sourceDest and peer are refused, and repeated violations close the connection with a reason', async () => {
        const broker = await resources.broker({ maxProtocolViolations: 5 });
        const mallory = resources.add(await rawClient(broker.url), c => c.terminate());
        const closedRow = collect(broker.app.get(AuditLog).recorded, 1, row => row.kind === 'closed');
        for (const route of [Route.server, 4, 200]) {
            const answer = await mallory.request(frame({ id: mallory.takeId(), route, type: Types.Action, body: bson(actionBody('switchboard/broker', 'whoami')) }), 10_000);
            expect(codeOf(answer)).toBe('MALFORMED_MESSAGE');
        }
        for (let i = 0; i < 5; i++) mallory.send(Buffer.from([1, 2, 3]));
        const closed = await mallory.closed;
        expect(closed.code).toBe(4400);
        expect(closed.reason).toMatch(/protocol violations/);
        await closedRow;
        expect(await broker.app.get(AuditLog).query({ kind: 'closed' })).toHaveLength(1);
    });

    it('a message of several frames is routed frame by frame; a lying header gets MalformedMessage after the honest ones', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        const mallory = resources.add(await rawClient(broker.url), c => c.terminate());
        const ids = [mallory.takeId(), mallory.takeId(), mallory.takeId()];
        const answers = ids.map(id => new Promise<ReceivedFrame>(resolve => {
            const stop = mallory.onFrame(received => {
                if (received.id !== id) return;
                stop();
                resolve(received);
            });
        }));
        const lying = clientFrame(ids[2], Types.Action, actionBody('switchboard/broker', 'whoami'));
        lying.writeUInt32LE(lying.length + 100, 0);
        mallory.send(Buffer.concat([
            peerFrame(ids[0], mallory.id, 'bob', Types.Action, actionBody('test/echo', 'echo', ['one'])),
            peerFrame(ids[1], mallory.id, 'bob', Types.Action, actionBody('test/echo', 'echo', ['two'])),
            lying,
        ]));
        const [one, two, three] = await Promise.all(answers);
        expect(one.body?.v).toBe('one');
        expect(two.body?.v).toBe('two');
        expect(codeOf(three)).toBe('MALFORMED_MESSAGE');
    });

    it('a stock Deepkit client gets errors it can decode: no Switchboard class unless it said it knows them', async () => {
        const broker = await resources.broker();
        const stock = resources.stockClient(broker.url);
        const error = await stock.peer('nobody').controller<{ echo(text: string): string }>('test/echo').echo('hi').catch(e => e);
        expect(error.constructor.name).toBe('RpcError');
        expect(error.message).toMatch(/^PEER_NOT_FOUND: No peer "nobody"/);

        const mallory = resources.add(await rawClient(broker.url), c => c.terminate());
        const answer = await mallory.request(peerFrame(mallory.takeId(), mallory.id, 'nobody', Types.Action, actionBody('test/echo', 'echo', ['x'])), 10_000);
        expect(answer?.body?.classType).toBe('');
    });

    it('a serving peer that leaves with many calls pending fails every one of them with PeerOffline, each exactly once', async () => {
        const broker = await resources.broker({ messagesPerSecond: 100_000 });
        const bob = await resources.servingPeer(broker.url, 'bob');
        const mallory = resources.add(await rawClient(broker.url), c => c.terminate());
        const calls = 5000;
        const failed = new Map<number, number>();
        const stats = broker.app.get(BrokerStats);
        const allFailed = new Promise<void>(resolve => mallory.onFrame(received => {
            if (received.type !== Types.Error) return;
            failed.set(received.id, (failed.get(received.id) ?? 0) + 1);
            if (failed.size === calls) resolve();
        }));
        const ids: number[] = [];
        const hold = bson(actionBody('test/echo', 'hold'));
        for (let i = 0; i < calls; i++) {
            const id = mallory.takeId();
            ids.push(id);
            mallory.send(peerFrame(id, mallory.id, 'bob', Types.Action, hold));
        }
        await eventually(() => stats.framesRouted >= calls, 20_000);
        await bob.client.disconnect();
        await allFailed;
        expect([...failed.keys()].sort()).toEqual(ids.sort());
        expect([...failed.values()].every(count => count === 1)).toBe(true);
    });
});
