import { ClusterPeerExchange, MemoryBus } from '../../server';
import { describeExchangeCompliance } from './exchange-compliance';

describeExchangeCompliance('cluster on the in-memory bus', {
    // A bus of its own per test: nothing one test registers is seen by the next.
    setup: async () => new ClusterPeerExchange({ cluster: 'compliance', heartbeatMs: 200, deathTimeoutMs: 1000, maxPayloadBytes: 1024 * 1024 }, new MemoryBus().connect()),
    teardown: async exchange => exchange.stop(),
    settle: async exchange => (exchange as ClusterPeerExchange).settled(),
});
