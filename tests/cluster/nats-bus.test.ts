import { NatsBus } from '../../server/cluster/bus/nats-bus';
import { describeClusterBusCompliance } from '../../testing/cluster-bus-compliance';
import { describeWithNats, NatsServer } from './nats-server';

let nats: NatsServer;

describeWithNats('NatsBus', () => {
    beforeAll(async () => {
        nats = await NatsServer.start();
    });
    afterAll(() => nats?.dispose());

    describeClusterBusCompliance('nats', {
        setup: async () => [new NatsBus(nats.url, 'compliance one', 100), new NatsBus(nats.url, 'compliance two', 100)],
    });
});
