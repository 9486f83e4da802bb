import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { RunningBroker } from '../../server';
import { api, eventually, Resources } from '../helpers';
import { describeOnEveryBus, exchangeOf, sees, usesClusterOn } from './cluster-fixture';

/** Resolves when `broker` lists `brokerId` in the given state (its peers counted too, when given). */
function lists(broker: RunningBroker, brokerId: string, alive: boolean, peers?: number): Promise<void> {
    return eventually(() => exchangeOf(broker).brokers().some(b => b.brokerId === brokerId && b.alive === alive && (peers === undefined || b.peers === peers)));
}

describeOnEveryBus('the cluster in /status, /metrics and the dashboard', bus => {
    const resources = new Resources();
    const setup = usesClusterOn(bus, resources);

    it('every broker alive with its peers, and which broker holds each peer; a broker that stops shows dead', async () => {
        const first = await setup.cluster.broker({ brokerId: 'b1' });
        const second = await setup.cluster.broker({ brokerId: 'b2' });
        await resources.servingPeer(first.url, 'bob');
        await resources.servingPeer(second.url, 'carol');
        await sees(first, 'carol', 'b2');
        await lists(first, 'b2', true, 1);

        const status = await (await fetch(`${first.httpUrl}/status`)).json();
        expect(status.brokerId).toBe('b1');
        expect(status.brokers.map((b: { brokerId: string, alive: boolean, peers: number }) => [b.brokerId, b.alive, b.peers])).toEqual([['b1', true, 1], ['b2', true, 1]]);
        expect(status.peersOnline).toBe(2);
        // Each broker's NATS link and heartbeat age: this broker's own link, the other's as its heartbeats tell.
        expect(status.brokers.map((b: { natsLink: string }) => b.natsLink)).toEqual(['up', 'up']);
        expect(status.brokers[0].heartbeatAgeMs).toBe(0);
        expect(status.brokers[1].heartbeatAgeMs).toBeGreaterThanOrEqual(0);

        const metrics = await (await fetch(`${first.httpUrl}/metrics`)).text();
        expect(metrics).toMatch(/^switchboard_cluster_brokers\{state="alive"\} 2$/m);
        expect(metrics).toMatch(/^switchboard_cluster_peers\{broker_id="b1"\} 1$/m);
        expect(metrics).toMatch(/^switchboard_cluster_peers\{broker_id="b2"\} 1$/m);
        expect(metrics).toMatch(/^switchboard_broker_info\{broker_id="b1"\} 1$/m);
        expect(metrics).toMatch(/^switchboard_cluster_nats_connected 1$/m);
        expect(metrics).toMatch(/^switchboard_cluster_heartbeat_age_seconds\{broker_id="b2"\} [\d.e-]+$/m);

        const stream = await api(resources.peerClient(first.url)).dashboard();
        const snapshot = await firstValueFrom(stream.pipe(filter(event => event.kind === 'snapshot')));
        expect(snapshot.peers.map(p => [p.id, p.brokerId])).toEqual([['bob', 'b1'], ['carol', 'b2']]);
        expect(snapshot.activity!.brokers.map(b => [b.brokerId, b.alive, b.natsLink])).toEqual([['b1', true, 'up'], ['b2', true, 'up']]);

        await second.close();
        await lists(first, 'b2', false);
        const after = await (await fetch(`${first.httpUrl}/metrics`)).text();
        expect(after).toMatch(/^switchboard_cluster_brokers\{state="alive"\} 1$/m);
        expect(after).toMatch(/^switchboard_cluster_brokers\{state="dead"\} 1$/m);
        expect(exchangeOf(first).brokers().map(b => b.natsLink)).toEqual(['up', 'down']);
    });
});
