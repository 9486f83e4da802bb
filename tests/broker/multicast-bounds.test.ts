import { RawClient } from '../../bench/chaos/raw-client';
import { actionBody, bson, clientFrame, errorCode, peerFrame, ReceivedFrame, Types } from '../../bench/chaos/wire-frames';
import { bigActionBody, multicastFrame } from '../../bench/chaos/multicast-attacks';
import { api, echoOf, eventually, Resources } from '../helpers';
import { CloseCode } from '../../server/connection';

const MULTICAST_RESULT = 104;

function outcomesOf(answer: ReceivedFrame | undefined): string[] | string | undefined {
    if (!answer) return;
    if (answer.type === Types.Error) return errorCode(answer);
    return answer.type === MULTICAST_RESULT ? answer.body?.outcomes : `type ${answer.type}`;
}

describe('one multicast frame costs the broker bounded work', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    const rawClient = async (url: string) => resources.add(await RawClient.open(url, { handshake: true, timeoutMs: 10_000 }), c => c.terminate());

    it('10,000 targets with a 1 MiB body are refused with RateLimited before any copy, and /health answers meanwhile', async () => {
        const broker = await resources.broker();
        const mallory = await rawClient(broker.url);
        const targets = Array.from({ length: 10_000 }, (_, i) => `nobody-${i}`);

        const attack = mallory.request(multicastFrame(mallory.takeId(), targets, bigActionBody(1024 * 1024)), 60_000);
        const health = fetch(broker.httpUrl + '/health');
        expect(outcomesOf(await attack)).toBe('RATE_LIMITED');
        expect((await health).status).toBe(200);
        // Refused, not held against the connection: an honest call on it is still served.
        const bob = await resources.servingPeer(broker.url, 'bob');
        expect(await echoOf(bob.client, 'bob').echo('still served')).toBe('still served');
        expect(mallory.open).toBe(true);
    });

    it('charges every copy in bytes: the same body to one live target passes, to more than the byte budget is refused', async () => {
        const broker = await resources.broker({ maxPayloadBytes: 1024 * 1024, bytesPerSecond: 1024 * 1024 });
        await resources.servingPeer(broker.url, 'bob');
        await resources.servingPeer(broker.url, 'carol');
        const body = bigActionBody(400 * 1024);

        // Each on a connection of its own, with a full budget: the 400 KiB frame and one 400 KiB copy fit in 1 MiB…
        const one = await rawClient(broker.url);
        expect(outcomesOf(await one.request(multicastFrame(one.takeId(), ['bob'], body), 10_000))).toEqual(['delivered']);
        // …the frame and three copies do not, though an unknown target would cost no copy: charged before any work.
        const three = await rawClient(broker.url);
        expect(outcomesOf(await three.request(multicastFrame(three.takeId(), ['bob', 'carol', 'nobody'], body), 10_000))).toBe('RATE_LIMITED');
    });

    it('every online target gets the whole body (header of its own, the body shared) and answers under its own id', async () => {
        const broker = await resources.broker();
        for (const peerId of ['bob', 'carol', 'dave']) await resources.servingPeer(broker.url, peerId);
        const mallory = await rawClient(broker.url);
        const firstId = 6_000_000;
        const text = 'y'.repeat(200 * 1024);
        const replies = new Map<number, unknown>();
        mallory.onFrame(frame => {
            if (frame.type === Types.ResponseActionSimple && frame.id >= firstId) replies.set(frame.id, frame.body?.v);
        });
        const answer = await mallory.request(multicastFrame(mallory.takeId(), ['bob', 'carol', 'dave'], bson(actionBody('test/echo', 'echo', [text])), firstId), 10_000);
        expect(outcomesOf(answer)).toEqual(['delivered', 'delivered', 'delivered']);
        await eventually(() => replies.size === 3);
        expect([...replies.keys()].sort()).toEqual([firstId, firstId + 1, firstId + 2]);
        expect([...replies.values()].every(value => value === text)).toBe(true);
    });

    it('a target named twice gets one copy: its later mentions are "duplicate"', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        const mallory = await rawClient(broker.url);
        const replies: number[] = [];
        const firstId = 5_000_000;
        mallory.onFrame(frame => {
            if (frame.type === Types.ResponseActionSimple && frame.id >= firstId) replies.push(frame.id);
        });
        const body = bson(actionBody('test/echo', 'echo', ['hi']));
        const answer = await mallory.request(multicastFrame(mallory.takeId(), ['bob', 'bob', 'nobody', 'bob'], body, firstId), 10_000);
        expect(outcomesOf(answer)).toEqual(['delivered', 'duplicate', 'not-found', 'duplicate']);
        await eventually(() => replies.length >= 1);
        // A call on the same connection is answered after bob's reply: no second copy was on its way.
        const whoami = await mallory.request(clientFrame(mallory.takeId(), Types.Action, actionBody('switchboard/broker', 'whoami')), 10_000);
        expect(whoami?.type).toBe(Types.ResponseActionSimple);
        expect(replies).toEqual([firstId]);
    });
});

describe('the send budget', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('is not refilled by a stall of the broker’s event loop: after a 1.5 s stall a drained budget holds about a tick, not a second', async () => {
        const perSecond = 20;
        const broker = await resources.broker({ messagesPerSecond: perSecond });
        const client = resources.add(await RawClient.open(broker.url, { handshake: true, timeoutMs: 10_000 }), c => c.terminate());
        const whoami = () => client.request(clientFrame(client.takeId(), Types.Action, actionBody('switchboard/broker', 'whoami')), 10_000);
        const refusals = async (count: number) => (await Promise.all(Array.from({ length: count }, whoami))).filter(answer => outcomesOf(answer) === 'RATE_LIMITED').length;

        // Drain the budget (the handshake took one message of it).
        await refusals(perSecond);
        // The broker runs in this process: block its event loop as one huge frame or a long GC would.
        const stalledUntil = Date.now() + 1500;
        while (Date.now() < stalledUntil) { /* stalled */ }
        // Wall time would have refilled all 20; the loop's free time gives back a fraction.
        expect(await refusals(perSecond)).toBeGreaterThanOrEqual(perSecond / 2);
    });
});

describe('a sender cannot get a receiver closed', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    const rawClient = async (url: string) => resources.add(await RawClient.open(url, { handshake: true, timeoutMs: 10_000 }), c => c.terminate());
    const register = (client: RawClient, peerId: string) => client.request(clientFrame(client.takeId(), Types.Action, actionBody('switchboard/broker', 'register', [peerId])), 10_000);

    it('the kick-and-hijack of issue 18: a multicast naming the victim 4× with a 10 MiB body does not close it, and its ID is not taken', async () => {
        const broker = await resources.broker();
        const victim = await rawClient(broker.url);
        expect((await register(victim, 'victim'))?.type).toBe(Types.ResponseActionSimple);
        // A victim that does not read for a moment (busy, or its network slow).
        victim.socket.pause();
        const mallory = await rawClient(broker.url);
        const attack = await mallory.request(multicastFrame(mallory.takeId(), ['victim', 'victim', 'victim', 'victim'], bigActionBody(10 * 1024 * 1024)), 30_000);
        expect(outcomesOf(attack)).toEqual(['delivered', 'duplicate', 'duplicate', 'duplicate']);

        const thief = await rawClient(broker.url);
        expect(errorCode((await register(thief, 'victim'))!)).toBe('PEER_ID_TAKEN');

        victim.socket.resume();
        const whoami = await victim.request(clientFrame(victim.takeId(), Types.Action, actionBody('switchboard/broker', 'whoami')), 30_000);
        expect(whoami?.body?.v?.peerId).toBe('victim');
    });

    it('a burst past the receiver’s buffer is refused to the sender (ReceiverBusy, its violations), not turned into the receiver’s close', async () => {
        const maxPayloadBytes = 1024 * 1024;
        const broker = await resources.broker({ maxPayloadBytes, maxBufferedBytes: 2 * maxPayloadBytes, bytesPerSecond: 256 * maxPayloadBytes, slowConsumerMs: 60_000 });
        const victim = await rawClient(broker.url);
        expect((await register(victim, 'victim'))?.type).toBe(Types.ResponseActionSimple);
        victim.socket.pause();
        const mallory = await rawClient(broker.url);
        const codes: string[] = [];
        mallory.onFrame(frame => {
            if (frame.type === Types.Error) codes.push(errorCode(frame));
        });
        // Far more than the bound and the operating system's socket buffers together.
        const body = bson(actionBody('test/echo', 'echo', ['x'.repeat(900 * 1024)]));
        for (let i = 0; i < 64 && mallory.open; i++) mallory.send(peerFrame(7_000_000 + i, mallory.id, 'victim', Types.Action, body));

        const closed = await mallory.closed;
        expect(closed.code).toBe(CloseCode.protocolViolation);
        expect(closed.reason).toMatch(/RECEIVER_BUSY/);
        expect(codes).toContain('RECEIVER_BUSY');

        const thief = await rawClient(broker.url);
        expect(errorCode((await register(thief, 'victim'))!)).toBe('PEER_ID_TAKEN');
        victim.socket.resume();
        const whoami = await victim.request(clientFrame(victim.takeId(), Types.Action, actionBody('switchboard/broker', 'whoami')), 30_000);
        expect(await Promise.race([victim.closed, Promise.resolve('open')])).toBe('open');
        expect(whoami?.body?.v?.peerId).toBe('victim');
        expect((await (await fetch(`${broker.httpUrl}/status`)).json()).refusals.RECEIVER_BUSY).toBeGreaterThan(0);
        expect((await api(resources.peerClient(broker.url)).whoami()).connectionId).toBeTruthy();
    });
});
