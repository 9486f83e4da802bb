import { randomUUID } from 'crypto';
import { BrokerConfig, MemoryBus, MemoryBusConnection, RunningBroker, startBroker } from '../../server';
import { Resources } from '../helpers';

/**
 * Brokers of one cluster in this process on one in-memory bus (server/cluster/bus/memory-bus.ts): the cluster's
 * behaviour without a nats-server. Brokers are b1, b2 … in the order they start, unless a test names one itself, as
 * on NATS (tests/cluster/cluster-fixture.ts).
 */
export class MemoryTestCluster {
    readonly name = `test-${randomUUID().slice(0, 8)}`;
    readonly bus = new MemoryBus();
    protected started = new Set<string>();
    /** Each broker's connections to the bus (its exchange's and its shared state's), by broker ID. */
    protected connections = new Map<string, MemoryBusConnection[]>();

    constructor(protected resources: Resources, protected fast: Partial<BrokerConfig>) {
    }

    async broker(config: Partial<BrokerConfig> = {}): Promise<RunningBroker> {
        let brokerId = config.brokerId;
        for (let n = 1; !brokerId; n++) if (!this.started.has(`b${n}`)) brokerId = `b${n}`;
        this.started.add(brokerId);
        const settings = { port: 0, database: ':memory:', logLevel: 'error' as const, cluster: this.name, brokerId, ...this.fast, ...config };
        const connections: MemoryBusConnection[] = [];
        this.connections.set(brokerId, connections);
        const clusterBus = { connect: (name: string) => { const connection = this.bus.connect(`${brokerId} ${name}`); connections.push(connection); return connection; } };
        const broker = await startBroker(settings, { clusterBus });
        return this.resources.add(broker, b => b.close());
    }

    /** Cuts broker `brokerId` off the bus (a partition: to it, as if NATS were gone). */
    cut(brokerId: string): void {
        for (const connection of this.connections.get(brokerId) ?? []) connection.cut();
    }

    restore(brokerId: string): void {
        for (const connection of this.connections.get(brokerId) ?? []) connection.restore();
    }
}
