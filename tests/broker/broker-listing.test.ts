import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { api, Resources } from '../helpers';

/** A single broker shows itself as a cluster of one, in the same views a cluster fills with every broker. */
describe('the brokers in /status, /metrics and the dashboard (single broker)', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('/status names this broker and lists it, alive, with its peers', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        await resources.servingPeer(broker.url, 'carol');

        const status = await (await fetch(`${broker.httpUrl}/status`)).json();
        expect(typeof status.brokerId).toBe('string');
        expect(status.brokerId.length).toBeGreaterThan(0);
        expect(status.brokers).toEqual([{ brokerId: status.brokerId, alive: true, peers: 2, lastSeen: expect.any(String) }]);
    });

    it('/metrics: brokers by state, peers per broker, and which broker answered', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        const { brokerId } = await (await fetch(`${broker.httpUrl}/status`)).json();

        const text = await (await fetch(`${broker.httpUrl}/metrics`)).text();
        expect(text).toMatch(/^switchboard_cluster_brokers\{state="alive"\} 1$/m);
        expect(text).toMatch(/^switchboard_cluster_brokers\{state="dead"\} 0$/m);
        expect(text).toContain(`\nswitchboard_cluster_peers{broker_id="${brokerId}"} 1\n`);
        expect(text).toContain(`\nswitchboard_broker_info{broker_id="${brokerId}"} 1\n`);
    });

    it('the dashboard stream: the brokers in its activity, and each online peer with the broker that holds it', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        const { brokerId } = await (await fetch(`${broker.httpUrl}/status`)).json();

        const watcher = resources.peerClient(broker.url);
        const stream = await api(watcher).dashboard();
        const snapshot = await firstValueFrom(stream.pipe(filter(event => event.kind === 'snapshot')));
        expect(snapshot.activity!.brokerId).toBe(brokerId);
        expect(snapshot.activity!.brokers.map(b => [b.brokerId, b.alive, b.peers])).toEqual([[brokerId, true, 1]]);
        expect(snapshot.peers.map(p => [p.id, p.brokerId])).toEqual([['bob', brokerId]]);
    });
});
