import { rpc } from '@deepkit/rpc';
import { firstValueFrom, Observable, ReplaySubject, Subject } from 'rxjs';
import { filter, take } from 'rxjs/operators';
import { api, echoOf, Resources } from '../helpers';
import { AccessDenied, FilesApi } from '../../shared';
import { DashboardEvent } from '../../shared/dashboard';
import { TokenStore } from '../../server';
import { sees } from '../cluster/cluster-fixture';
import { MemoryTestCluster } from '../cluster/memory-cluster';

/** Stands in for a peer serving a file: its chunk stream ends when the test says so. */
@rpc.controller(FilesApi.path)
class SlowFiles {
    static stream = new Subject<{ index: number }>();

    @rpc.action()
    chunks(fileId: string, from: number, count: number): Observable<{ index: number }> {
        return SlowFiles.stream;
    }
}

interface Tick {
    tick: number;
    padding: string;
}

/** A stream of an app's own contract, which the broker knows nothing about; each subscriber gets the ticks. */
@rpc.controller('app/ticker')
class Ticker {
    static stream = new Subject<Tick>();

    @rpc.action()
    ticks(): Observable<Tick> {
        return new Observable<Tick>(subscriber => Ticker.stream.subscribe(subscriber));
    }
}

describe('BrokerApi.dashboard()', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    /** Follows the dashboard stream; `next(predicate)` resolves with the first event (seen or coming) that matches. */
    async function watch(url: string, token?: string) {
        const client = resources.peerClient(url, token);
        const stream = await api(client).dashboard();
        const events = new ReplaySubject<DashboardEvent>();
        resources.add(stream.subscribe(events), subscription => subscription.unsubscribe());
        return {
            stream,
            next: (predicate: (event: DashboardEvent) => boolean) => firstValueFrom(events.pipe(filter(predicate), take(1))),
        };
    }

    it('starts with a snapshot, then follows peers, traffic and audit decisions live', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        const dashboard = await watch(broker.url);

        const snapshot = await dashboard.next(e => e.kind === 'snapshot');
        expect(snapshot.peers.map(p => [p.id, p.online])).toEqual([['bob', true]]);
        expect(snapshot.audit.map(a => [a.kind, a.peerId])).toContainEqual(['register', 'bob']);
        expect(snapshot.activity!.peersOnline).toBe(1);

        const alice = await resources.servingPeer(broker.url, 'alice');
        const aliceOnline = (await dashboard.next(e => e.kind === 'peer' && e.peers.some(p => p.id === 'alice'))).peers.find(p => p.id === 'alice')!;
        expect(aliceOnline.online).toBe(true);
        expect(aliceOnline.connectedSince).toBeInstanceOf(Date);

        for (let i = 0; i < 5; i++) await echoOf(alice.client, 'bob').echo('hi');
        const calls = await dashboard.next(e => e.kind === 'audit' && e.audit.some(a => a.kind === 'call'));
        expect(calls.audit.find(a => a.kind === 'call')).toMatchObject({ peerId: 'alice', target: 'bob', action: 'test/echo.echo' });
        const traffic = await dashboard.next(e => e.kind === 'activity' && e.activity!.callsRouted >= 5);
        expect(traffic.activity!.callsPerSecond).toBeGreaterThan(0);
        expect(traffic.activity!.bytesRouted).toBeGreaterThan(0);

        await echoOf(alice.client, 'nobody').echo('hi').catch(() => undefined);
        const refused = await dashboard.next(e => e.kind === 'activity' && (e.activity!.refusals['PEER_NOT_FOUND'] ?? 0) > 0);
        expect(refused.activity!.refusals['PEER_NOT_FOUND']).toBe(1);

        await alice.client.disconnect();
        const aliceOffline = (await dashboard.next(e => e.kind === 'peer' && e.peers.some(p => p.id === 'alice' && !p.online))).peers.find(p => p.id === 'alice')!;
        expect(aliceOffline.connectedSince).toBeUndefined();
    });

    it('sends presence changes in batches: 40 peers registering at once arrive in far fewer events', async () => {
        const broker = await resources.broker();
        const dashboard = await watch(broker.url);
        await dashboard.next(e => e.kind === 'snapshot');
        const seen = new Set<string>();
        let events = 0;
        const everyone = firstValueFrom(dashboard.stream.pipe(filter(e => e.kind === 'peer'), filter(e => {
            events++;
            for (const peer of e.peers) seen.add(peer.id);
            return seen.size === 40;
        })));
        await Promise.all(Array.from({ length: 40 }, (_, i) => resources.servingPeer(broker.url, `peer-${i}`)));
        await everyone;
        expect(events).toBeLessThan(40);
    });

    it('shows a file chunk stream as an active transfer until it ends', async () => {
        const broker = await resources.broker();
        const bob = await resources.servingPeer(broker.url, 'bob');
        bob.client.peerKernel!.registerController(SlowFiles, FilesApi.path);
        const alice = await resources.servingPeer(broker.url, 'alice');
        const dashboard = await watch(broker.url);

        const chunks = await alice.client.peer('bob').controller<SlowFiles>(FilesApi.path).chunks('f1', 0, 16);
        const received = firstValueFrom(chunks);
        const active = await dashboard.next(e => e.kind === 'activity' && e.activity!.transfers.length > 0);
        expect(active.activity!.transfers).toEqual([{ from: 'bob', to: 'alice', since: expect.any(Date), bytes: 0 }]);

        SlowFiles.stream.next({ index: 0 });
        SlowFiles.stream.complete();
        await received;
        await dashboard.next(e => e.kind === 'activity' && e.activity!.transfers.length === 0);
    });

    it('shows any stream between peers, whatever its contract, with the bytes it carried, until the caller stops it', async () => {
        const broker = await resources.broker();
        const bob = await resources.servingPeer(broker.url, 'bob');
        bob.client.peerKernel!.registerController(Ticker, 'app/ticker');
        const alice = await resources.servingPeer(broker.url, 'alice');
        const dashboard = await watch(broker.url);

        // Kept referenced: Deepkit holds a remote action's Observable only weakly.
        const ticks = await alice.client.peer('bob').controller<Ticker>('app/ticker').ticks();
        const received = new ReplaySubject<Tick>();
        const subscription = ticks.subscribe(received);
        await dashboard.next(e => e.kind === 'activity' && e.activity!.transfers.length > 0);
        Ticker.stream.next({ tick: 1, padding: 'x'.repeat(10_000) });
        await firstValueFrom(received);
        const carried = await dashboard.next(e => e.kind === 'activity' && (e.activity!.transfers[0]?.bytes ?? 0) > 10_000);
        expect(carried.activity!.transfers).toEqual([{ from: 'bob', to: 'alice', since: expect.any(Date), bytes: expect.any(Number) }]);

        subscription.unsubscribe();
        await dashboard.next(e => e.kind === 'activity' && e.activity!.transfers.length === 0);
    });

    it('in a cluster, the serving peer\'s broker shows the stream, and ends it when the caller leaves', async () => {
        const cluster = new MemoryTestCluster(resources, {});
        const [one, two] = [await cluster.broker(), await cluster.broker()];
        const bob = await resources.servingPeer(two.url, 'bob');
        bob.client.peerKernel!.registerController(Ticker, 'app/ticker');
        const alice = await resources.servingPeer(one.url, 'alice');
        await sees(one, 'bob', 'b2');
        const dashboard = await watch(two.url);

        const ticks = await alice.client.peer('bob').controller<Ticker>('app/ticker').ticks();
        // The stream ends with Disconnected when alice leaves below.
        resources.add(ticks.subscribe({ error: () => undefined }), subscription => subscription.unsubscribe());
        const active = await dashboard.next(e => e.kind === 'activity' && e.activity!.transfers.length > 0);
        expect(active.activity!.transfers).toEqual([{ from: 'bob', to: 'alice', since: expect.any(Date), bytes: 0 }]);

        // Gone without a word about the stream: broker two hears only that the caller left.
        await alice.client.disconnect();
        await dashboard.next(e => e.kind === 'activity' && e.activity!.transfers.length === 0);
    });

    it('token mode: admin tokens only; others get AccessDenied admin-only', async () => {
        const broker = await resources.broker({ auth: 'token' });
        const tokens = broker.app.get(TokenStore);
        const admin = await tokens.create('ops', { peerIds: [], admin: true });
        const app = await tokens.create('app', { peerIds: ['alice'] });

        const error = await api(resources.peerClient(broker.url, app)).dashboard().catch(e => e);
        expect(error).toBeInstanceOf(AccessDenied);
        expect(error.reason).toBe('admin-only');
        expect(await api(resources.peerClient(broker.url)).dashboard().catch(e => e.reason)).toBe('not-authenticated');

        const dashboard = await watch(broker.url, admin);
        expect((await dashboard.next(e => e.kind === 'snapshot')).peers).toEqual([]);
    });
});
