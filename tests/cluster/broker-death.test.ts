import { filter, take } from 'rxjs/operators';
import { firstValueFrom } from 'rxjs';
import { BrokerProcess } from '../../bench/chaos/broker-process';
import { Peer } from '../../peer';
import { PeerOffline } from '../../shared';
import { api, EchoController, echoOf, heldCalls, Resources } from '../helpers';
import { exchangeOf, sees, TestCluster } from './cluster-fixture';
import { describeWithNats, NatsServer } from './nats-server';

const resources = new Resources();
let nats: NatsServer;

describeWithNats('Cluster: a broker killed with SIGKILL', () => {
    beforeAll(async () => {
        nats = await NatsServer.start();
    });
    afterAll(() => nats?.dispose());
    afterEach(() => resources.closeAll());

    it('fails the calls in flight through it, shows its peers offline once, and its peers move to a live broker', async () => {
        const cluster = await TestCluster.create(nats, resources);
        const death = { clusterHeartbeatMs: 100, clusterDeathTimeoutMs: 600 };
        // Started side by side: the child process takes most of this test's time.
        const [live, doomed] = await Promise.all([
            cluster.broker(death),
            BrokerProcess.start(':memory:', cluster.flags(death)).then(broker => resources.add(broker, child => child.kill())),
        ]);

        // bob knows both brokers and reconnects; carol does not come back.
        const bob = resources.add(await Peer.connect({ url: [doomed.url, live.url], id: 'bob', reconnect: { initialDelayMs: 10, maxDelayMs: 50 } }), peer => peer.close());
        bob.expose(EchoController, EchoController.path);
        expect(bob.brokerUrl).toBe(doomed.url);
        await resources.servingPeer(doomed.url, 'carol');
        const alice = resources.peerClient(live.url);
        await api(alice).register('alice');
        await sees(live, 'bob');
        await sees(live, 'carol');

        const offline: string[] = [];
        exchangeOf(live).presence.pipe(filter(event => event.kind === 'offline')).subscribe(event => offline.push(event.peerId));
        const carolGone = firstValueFrom(exchangeOf(live).presence.pipe(filter(event => event.kind === 'offline' && event.peerId === 'carol'), take(1)));

        const inFlight = echoOf(alice, 'bob').hold();
        await heldCalls(1);
        await doomed.kill();

        await expect(inFlight).rejects.toBeInstanceOf(PeerOffline);
        await carolGone;
        await firstValueFrom(bob.state$.pipe(filter(state => state === 'registered' && bob.brokerUrl === live.url)));
        expect(await echoOf(alice, 'bob').echo('moved')).toBe('moved');

        // No ID stays taken: carol's is free for anyone now.
        await api(resources.peerClient(live.url)).register('carol');
        await exchangeOf(live).settled();
        expect(offline.filter(peerId => peerId === 'carol')).toEqual(['carol']);
        expect(offline.filter(peerId => peerId === 'bob')).toEqual(['bob']);
    });
});
