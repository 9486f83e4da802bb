import { MemoryBus } from '../../server';
import { describeClusterBusCompliance } from '../../testing/cluster-bus-compliance';

describeClusterBusCompliance('memory', {
    setup: async () => {
        const bus = new MemoryBus();
        return [bus.connect('one'), bus.connect('two')];
    },
});
