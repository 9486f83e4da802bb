import { BrokerProcess } from '../../bench/chaos/broker-process';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { Peer } from '../../peer';
import { TokenStore } from '../../server/registry/token-store';
import WebSocket from 'ws';
import { EchoController, echoOf, eventually, heldCalls, Resources } from '../helpers';
import { exchangeOf, sees, usesCluster } from '../cluster/cluster-fixture';
import { describeWithNats } from '../cluster/nats-server';
import { peerInternals } from '../../peer/internal';

const resources = new Resources();
const fast = { initialDelayMs: 20, maxDelayMs: 200 };

/** Calls `call` again and again until `stop` resolves; counts what succeeded and what failed (and how). */
async function callInALoop(call: () => Promise<unknown>, stop: Promise<unknown>): Promise<{ ok: number, failed: string[] }> {
    let stopped = false;
    void stop.then(() => stopped = true);
    const result = { ok: 0, failed: [] as string[] };
    while (!stopped) {
        try {
            await call();
            result.ok++;
        } catch (error) {
            result.failed.push(`${(error as Error).name}: ${(error as Error).message}`);
        }
        // A failure can come without any I/O (an open circuit): give timers and sockets their turn.
        await new Promise(resolve => setImmediate(resolve));
    }
    return result;
}

/** Whether the broker at `url` turns a new WebSocket away (draining: closed at once; stopped: refused). */
function turnsAway(url: string): Promise<boolean> {
    return new Promise(resolve => {
        const socket = new WebSocket(url);
        socket.on('error', () => resolve(true));
        socket.on('close', code => resolve(code === 1001));
        // Accepted, and still open a moment later: not draining (yet).
        socket.on('open', () => setTimeout(() => socket.close(), 50));
    });
}

describe('Broker drain: who may ask', () => {
    afterEach(() => resources.closeAll());

    it('token mode: POST /admin/drain needs an admin token; an admin drains the broker, which then stops', async () => {
        const broker = await resources.broker({ auth: 'token' });
        const tokens = broker.app.get(TokenStore);
        const admin = await tokens.create('ops', { peerIds: [], admin: true });
        const peer = await tokens.create('alice-app', { peerIds: ['alice'] });
        const drain = (token?: string) => fetch(`${broker.httpUrl}/admin/drain`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });

        expect((await drain()).status).toBe(401);
        expect((await drain(peer)).status).toBe(403);
        expect(broker.runtime.isDraining).toBe(false);
        const accepted = await drain(admin);
        expect(accepted.status).toBe(202);
        expect(await accepted.json()).toMatchObject({ status: 'draining', timeoutMs: 30_000 });
        // Nobody is connected: it stops at once.
        await broker.runtime.finished;
    });
});

describeWithNats('Broker drain: its peers move to another broker without a failed call', () => {
    const fixture = usesCluster(resources);

    it('drain broker one while peers call in a loop: 0 failed calls, every peer ends on broker two', async () => {
        const [one, two] = [await fixture.cluster.broker(), await fixture.cluster.broker()];
        const both = [one.url, two.url];
        const connect = async (id: string, url: string[]) => {
            const peer = resources.add(await Peer.connect({ url, id, reconnect: fast }), p => p.close());
            peer.expose(EchoController, EchoController.path);
            return peer;
        };
        // alice and bob on broker one (both move), carol and dave on broker two (they stay).
        const [alice, bob, carol, dave] = [await connect('alice', both), await connect('bob', both), await connect('carol', [two.url, one.url]), await connect('dave', [two.url, one.url])];
        expect([alice.brokerUrl, bob.brokerUrl, carol.brokerUrl, dave.brokerUrl]).toEqual([one.url, one.url, two.url, two.url]);
        await sees(two, 'alice');
        await sees(two, 'bob');
        await sees(one, 'carol');

        const echo = (from: Peer, to: string, idempotent: string[] = []) => () => from.to(to).controller<EchoController>(EchoController.path, { idempotent }).echo(`${from.id}→${to}`);
        let drained!: () => void;
        const done = new Promise<void>(resolve => drained = resolve);
        const loops = [
            callInALoop(echo(alice, 'carol'), done), // a mover calls a stayer
            // A mover calls a mover: a call that reaches bob in the instant he leaves fails with PeerOffline (one
            // connection per peer: no make-before-break yet), so this one is declared idempotent and retried.
            callInALoop(echo(alice, 'bob', ['echo']), done),
            callInALoop(echo(carol, 'dave'), done), // untouched
        ];
        try {
            // Every loop is under way before the drain.
            await Promise.all([echo(alice, 'carol')(), echo(alice, 'bob')()]);

            await one.runtime.drain(30_000);
            // Broker one is gone once its peers left it; they are back on broker two a moment later.
            await Promise.all([alice, bob].map(peer => firstValueFrom(peer.state$.pipe(filter(state => state === 'registered' && peer.brokerUrl === two.url)))));
            await sees(two, 'alice', exchangeOf(two).brokerId);
            await sees(two, 'bob', exchangeOf(two).brokerId);
            // A few rounds after the drain: the peers serve and call from broker two.
            await Promise.all([echo(alice, 'carol')(), echo(alice, 'bob')(), echo(dave, 'alice')()]);
        } finally {
            drained();
        }
        const results = await Promise.all(loops);
        for (const result of results) expect(result.failed).toEqual([]);
        for (const result of results) expect(result.ok).toBeGreaterThan(0);
        expect([alice.brokerUrl, bob.brokerUrl]).toEqual([two.url, two.url]);
        expect(exchangeOf(two).lookup('alice')?.brokerId).toBe(exchangeOf(two).brokerId);
    });

    it.each(['SIGTERM', 'switchboard drain'])('%s on a broker process: its peer moves first, then the process exits 0', async how => {
        const [live, leaving] = await Promise.all([
            fixture.cluster.broker(),
            BrokerProcess.start(':memory:', fixture.cluster.flags()).then(broker => resources.add(broker, child => child.kill())),
        ]);
        const alice = resources.add(await Peer.connect({ url: [leaving.url, live.url], id: 'alice', reconnect: fast }), p => p.close());
        alice.expose(EchoController, EchoController.path);
        const bob = resources.add(await Peer.connect({ url: live.url, id: 'bob' }), p => p.close());
        await sees(live, 'alice', undefined);
        const brokers: (string | undefined)[] = [];
        alice.brokerUrl$.subscribe(url => brokers.push(url));
        // A call alice is serving when the drain begins: it ends with its answer, not with the broker.
        const held = echoOf(peerInternals(bob).client, 'alice', 60_000).hold();
        await heldCalls(1);

        if (how === 'SIGTERM') {
            process.kill(leaving.pid, 'SIGTERM');
        } else {
            const { code, output } = await BrokerProcess.command(':memory:', ['drain', '--url', `http://127.0.0.1:${leaving.port}`]);
            expect({ code, output }).toMatchObject({ code: 0, output: expect.stringContaining('draining') });
        }
        await eventually(() => turnsAway(leaving.url));
        EchoController.held.shift()!();
        expect(await held).toBe('released');
        expect(await leaving.program.exited).toBe(0);
        // alice left before her broker went: straight to the live one, never back to the leaving one.
        expect(brokers.filter(url => url !== undefined)).toEqual([leaving.url, live.url]);
        await sees(live, 'alice', exchangeOf(live).brokerId);
        expect(await bob.to('alice').controller<EchoController>(EchoController.path).echo('moved')).toBe('moved');
    });
});
