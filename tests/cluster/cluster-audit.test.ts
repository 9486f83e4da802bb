import { runProgram } from '../processes';
import { api, echoOf, eventually, Resources } from '../helpers';
import { readClusterTrail } from '../../server/cluster/cluster-audit';
import { sees, usesCluster } from './cluster-fixture';
import { describeWithNats } from './nats-server';

const resources = new Resources();

describeWithNats('Cluster: one audit trail for the whole cluster', () => {
    const setup = usesCluster(resources);
    jest.setTimeout(30_000);

    it('rows of every broker, each naming its broker, read in one place (switchboard audit --natsUrl)', async () => {
        const [one, two] = [await setup.cluster.broker({ brokerId: 'b1', auditCalls: 'each' }), await setup.cluster.broker({ brokerId: 'b2', auditCalls: 'each' })];
        await resources.servingPeer(two.url, 'bob');
        const alice = resources.peerClient(one.url);
        await api(alice).register('alice');
        await sees(one, 'bob', 'b2');
        expect(await echoOf(alice, 'bob').echo('hi')).toBe('hi');

        // As an operator reads it: a NATS user with the cluster's buckets and audit trail, no frames.
        const operator = await setup.nats.addOperator(setup.cluster.name);
        const trail = () => readClusterTrail(operator, setup.cluster.name, { limit: 100 });
        await eventually(async () => (await trail()).some(row => row.kind === 'call'));
        const rows = (await trail()).map(row => [row.kind, row.peerId, row.brokerId]);
        expect(rows).toEqual(expect.arrayContaining([['register', 'bob', 'b2'], ['register', 'alice', 'b1'], ['call', 'alice', 'b1']]));

        const command = runProgram('server/main.ts', ['audit', '--natsUrl', operator, '--cluster', setup.cluster.name, '--peer', 'bob']);
        expect(await command.exit).toBe(0);
        expect(command.output()).toMatch(/register\s+bob .*broker b2/);
        expect(command.output()).toMatch(/call\s+alice .*→ bob .*broker b1/);
    });
});
