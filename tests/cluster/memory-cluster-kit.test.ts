import { MemoryBus } from '../../server';
import { startSwitchboard, SwitchboardTestKit } from '../../testing/test-kit';
import { EchoController } from '../helpers';
import { exchangeOf, sees } from './cluster-fixture';

describe('Test kit: brokers of one cluster on an in-memory bus, without nats-server', () => {
    const kits: SwitchboardTestKit[] = [];
    afterEach(async () => {
        for (const kit of kits.splice(0).reverse()) await kit.close();
    });

    it('two kits on one MemoryBus form one cluster: a peer of one calls a peer of the other, which knows its caller', async () => {
        const bus = new MemoryBus();
        const one = await startSwitchboard({ broker: { cluster: 'demo', brokerId: 'b1' }, clusterBus: bus });
        kits.push(one);
        const two = await startSwitchboard({ broker: { cluster: 'demo', brokerId: 'b2' }, clusterBus: bus });
        kits.push(two);
        await two.addPeer({ id: 'bob', expose: [[EchoController, EchoController.path]] });
        const alice = await one.addPeer('alice');
        await sees(one.broker, 'bob', 'b2');
        const bob = alice.to('bob').controller<EchoController>(EchoController.path);
        expect(await bob.echo('across')).toBe('across');
        expect(await bob.whoCalls()).toEqual({ peerId: 'alice', session: 'anonymous' });
        expect(exchangeOf(one.broker).brokers().map(broker => [broker.brokerId, broker.alive])).toEqual([['b1', true], ['b2', true]]);
    });
});
