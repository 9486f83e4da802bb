import { randomUUID } from 'crypto';
import { NatsPeerExchange } from '../../server/cluster/nats-exchange';
import { describeExchangeCompliance } from '../exchange/exchange-compliance';
import { describeWithNats, NatsServer } from './nats-server';

let nats: NatsServer;

describeWithNats('NatsPeerExchange', () => {
    beforeAll(async () => {
        nats = await NatsServer.start();
    });
    afterAll(() => nats?.dispose());

    describeExchangeCompliance('nats', {
        // A cluster of its own per test: nothing one test registers is seen by the next.
        setup: async () => new NatsPeerExchange({
            natsUrl: nats.url, cluster: `compliance-${randomUUID().slice(0, 8)}`, heartbeatMs: 200, deathTimeoutMs: 1000, maxPayloadBytes: 1024 * 1024,
        }),
        teardown: async exchange => exchange.stop(),
        settle: async exchange => (exchange as NatsPeerExchange).settled(),
    });
});
