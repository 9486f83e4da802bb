import { rpc } from '@deepkit/rpc';
import { firstValueFrom, Subject } from 'rxjs';
import { filter } from 'rxjs/operators';
import { httpVisible, PeerOffline } from '../../shared';
import { Peer } from '../../peer';
import { PeerClient } from '../../peer/internal';
import { startSwitchboard } from '../../testing/test-kit';
import { api, Resources } from '../helpers';
import { sees, usesCluster } from '../cluster/cluster-fixture';
import { describeWithNats } from '../cluster/nats-server';

/** A receiver that never answers: every call is parked until the test ends. */
@rpc.controller('app/stuck')
class StuckController {
    static parked = 0;
    static readonly parked$ = new Subject<number>();

    @rpc.action()
    @httpVisible()
    never(): Promise<string> {
        StuckController.parked$.next(++StuckController.parked);
        return new Promise(() => undefined);
    }
}

interface StuckApi {
    never(): Promise<string>;
}

/** Resolves once `count` calls in all are parked. */
function parked(count: number): Promise<unknown> {
    return StuckController.parked >= count ? Promise.resolve() : firstValueFrom(StuckController.parked$.pipe(filter(n => n >= count)));
}

/** Far beyond the test's own time: a call that ends was ended by the broker, not by its timeout. */
const LONG_TIMEOUT_MS = 10 * 60_000;

/** A call that never answers, from a peer; resolves with the error it ends with. */
function stuckCall(caller: PeerClient, target: string): Promise<unknown> {
    return caller.peer(target).controller<StuckApi>('app/stuck', { timeout: LONG_TIMEOUT_MS }).never().catch(e => e);
}

/** The same over HTTP (a caller of the broker's own); resolves with the HTTP status and body. */
async function stuckHttpCall(httpUrl: string, target: string): Promise<{ status: number, body: any }> {
    const response = await fetch(`${httpUrl}/peers/${target}/app/stuck/never`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-timeout-ms': String(LONG_TIMEOUT_MS) }, body: '[]' });
    return { status: response.status, body: await response.json() };
}

async function stuckPeer(resources: Resources, url: string, peerId: string): Promise<PeerClient> {
    const { client } = await resources.servingPeer(url, peerId);
    client.peerKernel!.registerController(StuckController, 'app/stuck');
    return client;
}

function expectOffline(error: any, peerId: string): void {
    expect(error).toBeInstanceOf(PeerOffline);
    expect(error.peerId).toBe(peerId);
}

/**
 * A peer that leaves cleanly (deregisters; Peer.close() then disconnects) while calls to it are pending: every caller,
 * peer or HTTP, on its broker or another, gets PeerOffline at once, as when it drops, not at its own call timeout.
 */
describe('calls pending on a peer that leaves cleanly fail at once with PeerOffline', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());
    beforeEach(() => StuckController.parked = 0);

    it('Peer.close() on the receiver fails the caller\'s pending call', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        kit.peer('bob').expose(StuckController, 'app/stuck');
        const pending = kit.peer('alice').to('bob').controller<StuckApi>('app/stuck', { timeout: LONG_TIMEOUT_MS }).never().catch(e => e);
        await parked(1);

        await kit.peer('bob').close();

        expectOffline(await pending, 'bob');
    });

    it('a deregister alone (the connection stays open) fails the peer and HTTP calls pending on that ID', async () => {
        const broker = await resources.broker();
        const alice = resources.peerClient(broker.url);
        const bob = await stuckPeer(resources, broker.url, 'bob');
        const calls = [stuckCall(alice, 'bob'), stuckCall(alice, 'bob')];
        const overHttp = stuckHttpCall(broker.httpUrl, 'bob');
        await parked(3);

        await api(bob).deregister();

        for (const call of calls) expectOffline(await call, 'bob');
        expect(await overHttp).toMatchObject({ status: 503, body: { code: 'PEER_OFFLINE' } });
        // The ID is free at once, and a call to it now is refused, not parked.
        expect(await stuckCall(alice, 'bob')).toBeInstanceOf(PeerOffline);
    });
});

describeWithNats('Cluster: calls pending on a peer that leaves cleanly fail at once', () => {
    const resources = new Resources();
    const setup = usesCluster(resources);
    beforeEach(() => StuckController.parked = 0);

    it('a deregister on its broker fails the peer and HTTP calls waiting on another broker', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        const bob = await stuckPeer(resources, two.url, 'bob');
        await sees(one, 'bob');
        const alice = resources.peerClient(one.url);
        await api(alice).register('alice');
        const calls = [stuckCall(alice, 'bob'), stuckCall(alice, 'bob')];
        const overHttp = stuckHttpCall(one.httpUrl, 'bob');
        await parked(3);

        await api(bob).deregister();

        for (const call of calls) expectOffline(await call, 'bob');
        expect(await overHttp).toMatchObject({ status: 503, body: { code: 'PEER_OFFLINE' } });
    });

    it('Peer.close() on a receiver on another broker fails the call waiting there', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        const bob = await Peer.connect({ url: two.url, id: 'bob', expose: [[StuckController, 'app/stuck']] });
        resources.add(bob, peer => peer.close());
        await sees(one, 'bob');
        const alice = resources.peerClient(one.url);
        const pending = stuckCall(alice, 'bob');
        await parked(1);

        await bob.close();

        expectOffline(await pending, 'bob');
    });
});
