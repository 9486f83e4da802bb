import { InProcessPeerExchange } from '../../server/exchange/in-process-exchange';
import { describeExchangeCompliance } from './exchange-compliance';

describeExchangeCompliance('in-process', {
    setup: async () => new InProcessPeerExchange(),
    teardown: async exchange => exchange.stop(),
});
