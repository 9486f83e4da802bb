import { firstValueFrom } from 'rxjs';
import { AuthenticationFailed, PeerIdTaken } from '../../shared';
import { PeerTokenStore } from '../../server/registry/token-store';
import { RunningBroker } from '../../server';
import { ClusterState } from '../../server/cluster/cluster-state';
import { ClusterTokenStore } from '../../server/cluster/cluster-token-store';
import { runProgram } from '../processes';
import { api, echoOf, Resources } from '../helpers';
import { describeOnEveryBus, sees, usesCluster, usesClusterOn } from './cluster-fixture';
import { describeWithNats } from './nats-server';

const resources = new Resources();

/** Token mode, with the poll for revoked tokens out of reach of a test: only the cluster's watch can close in time. */
const TOKEN_MODE = { auth: 'token' as const, tokenRevocationCheckMs: 3_600_000 };

function tokensOf(broker: RunningBroker): PeerTokenStore {
    return broker.app.get<PeerTokenStore>();
}

describeWithNats('Cluster: tokens live in the cluster (JetStream KV)', () => {
    const setup = usesCluster(resources);
    jest.setTimeout(30_000);

    it('a token made by the CLI works on every broker; a revoke over another NATS connection closes its connections on every broker at once', async () => {
        const [one, two] = [await setup.cluster.broker(TOKEN_MODE), await setup.cluster.broker(TOKEN_MODE)];
        const create = runProgram('server/main.ts', ['token:create', 'alice-app', '--peer', 'alice*', '--natsUrl', setup.nats.url, '--cluster', setup.cluster.name]);
        expect(await create.exit).toBe(0);
        const token = create.output().match(/^(sbt_\S+)$/m)![1];
        const bobToken = await tokensOf(one).create('bob-app', { peerIds: ['bob'] });

        const bob = await resources.servingPeer(one.url, 'bob', { token: bobToken });
        const alice = await resources.servingPeer(two.url, 'alice', { token });
        const aliceToo = await resources.servingPeer(one.url, 'alice-2', { token });
        await sees(two, 'bob');
        expect(await echoOf(alice.client, 'bob').whoCalls()).toEqual({ peerId: 'alice', session: 'alice-app' });

        const closed = [alice, aliceToo].map(peer => firstValueFrom(peer.client.transporter.disconnected));
        // What `token:revoke` does, in this process (a CLI process costs seconds): a connection of its own to NATS.
        const state = resources.add(new ClusterState(setup.nats.url, setup.cluster.name, 'cli'), s => s.close());
        expect(await new ClusterTokenStore(state).revoke('alice-app')).toBe(true);
        await Promise.all(closed);

        for (const broker of [one, two]) {
            await expect(resources.peerClient(broker.url, token).connect()).rejects.toBeInstanceOf(AuthenticationFailed);
        }
        expect((await api(bob.client).whoami()).peerId).toBe('bob');
        expect((await tokensOf(two).list()).map(t => [t.name, !!t.revokedAt])).toEqual([['alice-app', true], ['bob-app', false]]);
    });
});

describeOnEveryBus('Cluster: tokens are the cluster\'s', bus => {
    const setup = usesClusterOn(bus, resources);
    jest.setTimeout(30_000);

    it('a token revoked through one broker closes its connections on every broker at once', async () => {
        const [one, two] = [await setup.cluster.broker(TOKEN_MODE), await setup.cluster.broker(TOKEN_MODE)];
        const token = await tokensOf(one).create('alice-app', { peerIds: ['alice*'] });
        const alice = await resources.servingPeer(two.url, 'alice', { token });
        const aliceToo = await resources.servingPeer(one.url, 'alice-2', { token });
        const closed = [alice, aliceToo].map(peer => firstValueFrom(peer.client.transporter.disconnected));
        expect(await tokensOf(two).revoke('alice-app')).toBe(true);
        await Promise.all(closed);
        for (const broker of [one, two]) {
            await expect(resources.peerClient(broker.url, token).connect()).rejects.toBeInstanceOf(AuthenticationFailed);
        }
    });

    it('one live token a name across the cluster; a revoked name can be made again', async () => {
        const [one, two] = [await setup.cluster.broker(TOKEN_MODE), await setup.cluster.broker(TOKEN_MODE)];
        await tokensOf(one).create('app', { peerIds: ['a'] });
        await expect(tokensOf(two).create('app', { peerIds: ['b'] })).rejects.toThrow('exists already');
        expect(await tokensOf(two).revoke('app')).toBe(true);
        expect(await tokensOf(one).revoke('app')).toBe(false);
        const again = await tokensOf(two).create('app', { peerIds: ['b'] });
        expect((await tokensOf(one).verify(again))?.peerIds).toEqual(['b']);
    });

    it('takeover across brokers: the same token takes its ID over on another broker, another token gets PeerIdTaken', async () => {
        const [one, two] = [await setup.cluster.broker(TOKEN_MODE), await setup.cluster.broker(TOKEN_MODE)];
        const teamA = await tokensOf(one).create('team-a', { peerIds: ['team-*'] });
        const teamB = await tokensOf(one).create('team-b', { peerIds: ['team-*'] });
        const first = await resources.servingPeer(one.url, 'team-1', { token: teamA });
        await sees(two, 'team-1');

        await expect(api(resources.peerClient(two.url, teamB)).register('team-1')).rejects.toBeInstanceOf(PeerIdTaken);
        const replaced = firstValueFrom(first.client.transporter.disconnected);
        const again = await resources.servingPeer(two.url, 'team-1', { token: teamA });
        expect(again.registration.tookOver).toBe(true);
        await replaced;
        const caller = await resources.servingPeer(one.url, 'team-2', { token: teamB });
        expect(await echoOf(caller.client, 'team-1').whoCalls()).toEqual({ peerId: 'team-2', session: 'team-b' });
    });
});
