import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { Peer } from '../../peer';
import { directLinks } from '../../peer/features/links';
import { EchoController, Resources } from '../helpers';
import { Run, runProgram } from '../processes';

jest.setTimeout(120_000);

const resources = new Resources();
afterEach(() => resources.closeAll());

/** A broker in a process of its own, so it can be killed without a goodbye. */
async function brokerProcess(port = 0): Promise<{ run: Run, url: string, port: number }> {
    const run = runProgram('server/main.ts', ['start'], { SWITCHBOARD_DATABASE: ':memory:', SWITCHBOARD_PORT: String(port) });
    resources.add(run.child, child => child.exitCode === null && child.kill('SIGKILL'));
    const [, url, listening] = await run.waitFor(/listening on (ws:\/\/127\.0\.0\.1:(\d+))/, 60_000);
    return { run, url, port: Number(listening) };
}

async function linkedPeer(url: string, id: string) {
    const peer = await Peer.connect({
        url, id, features: { links: directLinks() }, expose: [[EchoController, EchoController.path]],
        reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, callTimeoutMs: 10_000,
    });
    return resources.add(peer, p => p.close());
}

function stateOf(peer: Peer<any>, state: string): Promise<unknown> {
    return firstValueFrom(peer.state$.pipe(filter(s => s === state)));
}

describe('direct links while the broker is down', () => {
    it('a broker killed with SIGKILL: linked peers go on calling each other (N of N answered), and presence is whole again after its restart', async () => {
        const first = await brokerProcess();
        const alice = await linkedPeer(first.url, 'alice');
        const bob = await linkedPeer(first.url, 'bob');
        const opened = (peer: typeof alice, other: string) => firstValueFrom(peer.features.links.changes$.pipe(filter(event => event.kind === 'open' && event.peerId === other)));
        const linked = Promise.all([opened(alice, 'bob'), opened(bob, 'alice')]);
        await alice.to('bob').controller<EchoController>(EchoController.path).echo('hello');
        await linked;
        // A first message while the broker is up: alice learns bob's key (sealing), which needs the broker.
        expect(await alice.chat.send('bob', 'hello')).toMatchObject({ status: 'delivered', path: 'direct' });

        const aliceLost = stateOf(alice, 'disconnected');
        const bobLost = stateOf(bob, 'disconnected');
        first.run.child.kill('SIGKILL');
        await first.run.exit;
        await Promise.all([aliceLost, bobLost]);

        const calls = 200;
        const toBob = alice.to('bob').controller<EchoController>(EchoController.path);
        const toAlice = bob.to('alice').controller<EchoController>(EchoController.path);
        const answers = await Promise.all([
            ...Array.from({ length: calls }, (_, i) => toBob.echo(`to bob ${i}`)),
            ...Array.from({ length: calls }, (_, i) => toAlice.echo(`to alice ${i}`)),
        ]);
        expect(answers).toEqual([
            ...Array.from({ length: calls }, (_, i) => `to bob ${i}`),
            ...Array.from({ length: calls }, (_, i) => `to alice ${i}`),
        ]);
        expect(await toBob.whoCalls()).toEqual({ peerId: 'alice', session: '' });
        expect(alice.state).not.toBe('registered');
        // Chat too goes on over the link, and says so.
        expect(await alice.chat.send('bob', 'while the broker is down')).toMatchObject({ status: 'delivered', path: 'direct' });
        expect((await bob.chat.history('alice'))[1]).toMatchObject({ text: 'while the broker is down', path: 'direct' });

        // The same port: the peers' reconnect loops find it.
        await brokerProcess(first.port);
        await Promise.all([alice.whenRegistered(60_000), bob.whenRegistered(60_000)]);
        const online = async (peer: Peer<any>) => (await peer.broker.listPeers({ online: true })).map(info => info.id).sort();
        expect(await online(alice)).toEqual(['alice', 'bob']);
        expect(await online(bob)).toEqual(['alice', 'bob']);
        expect(alice.features.links.list()).toEqual([expect.objectContaining({ peerId: 'bob', state: 'open' })]);
    });
});
