import { randomUUID } from 'crypto';
import { BrokerConfig, RunningBroker } from '../../server';
import { ClusterPeerExchange } from '../../server';
import { PeerExchange } from '../../server/exchange/peer-exchange';
import { eventually, Resources } from '../helpers';
import { MemoryTestCluster } from './memory-cluster';
import { describeWithNats, NatsServer } from './nats-server';

/** Settings that make a cluster notice deaths quickly in tests; the waits are still for events, never for time. */
export const FAST_CLUSTER: Partial<BrokerConfig> = { clusterHeartbeatMs: 100, clusterDeathTimeoutMs: 1_000 };

/** Broker IDs a test cluster has NATS users for. */
const BROKER_IDS = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];

/**
 * Brokers of one cluster (a name of their own) on one nats-server, each with its own NATS user and a broker's
 * permissions only (as the README tells operators to run them): brokers are b1, b2 … in the order they start, unless
 * a test names one of those IDs itself.
 */
export class TestCluster {
    readonly name = `test-${randomUUID().slice(0, 8)}`;
    protected urls = new Map<string, string>();
    protected started = new Set<string>();

    protected constructor(readonly nats: NatsServer, protected resources: Resources) {
    }

    static async create(nats: NatsServer, resources: Resources): Promise<TestCluster> {
        const cluster = new TestCluster(nats, resources);
        cluster.urls = await nats.addBrokers(cluster.name, BROKER_IDS);
        return cluster;
    }

    broker(config: Partial<BrokerConfig> = {}): Promise<RunningBroker> {
        return this.resources.broker(this.settings(config));
    }

    /** Flags of `start` for a broker of this cluster in a child process. */
    flags(config: Partial<BrokerConfig> = {}): string[] {
        return Object.entries(this.settings(config)).flatMap(([name, value]) => [`--${name}`, String(value)]);
    }

    /** The natsUrl of broker `brokerId`: its own NATS user. */
    natsUrlOf(brokerId: string): string {
        return this.urls.get(brokerId)!;
    }

    protected settings(config: Partial<BrokerConfig>): Partial<BrokerConfig> {
        const brokerId = config.brokerId || BROKER_IDS.find(id => !this.started.has(id));
        const natsUrl = brokerId && this.urls.get(brokerId);
        if (!natsUrl) throw new Error(`A test cluster has NATS users for brokers ${BROKER_IDS.join(', ')} only (asked for ${brokerId ?? 'one more'})`);
        this.started.add(brokerId);
        return { natsUrl, cluster: this.name, brokerId, ...FAST_CLUSTER, ...config };
    }
}

export function exchangeOf(broker: RunningBroker): ClusterPeerExchange {
    return broker.app.get<PeerExchange>() as ClusterPeerExchange;
}

/** Which bus the brokers of a test cluster meet on. */
export type TestBus = 'memory' | 'nats';

/** What a test needs of its cluster, whatever the bus: brokers. */
export interface ClusterUnderTest {
    readonly name: string;
    broker(config?: Partial<BrokerConfig>): Promise<RunningBroker>;
}

/**
 * `body` runs twice: on the in-memory bus in every run, and on NATS where nats-server is installed (else that half is
 * skipped, as describeWithNats does). For behaviour that does not depend on what only NATS can show.
 */
export function describeOnEveryBus(name: string, body: (bus: TestBus) => void): void {
    describe(`${name} (in-memory bus)`, () => body('memory'));
    describeWithNats(`${name} (NATS)`, () => body('nats'));
}

/** A cluster with a name of its own for each test, on `bus`; what a test opened through `resources` is closed after it. */
export function usesClusterOn(bus: TestBus, resources: Resources): { readonly cluster: ClusterUnderTest } {
    if (bus === 'nats') return usesCluster(resources);
    let cluster: MemoryTestCluster | undefined;
    beforeEach(() => {
        cluster = new MemoryTestCluster(resources, FAST_CLUSTER);
    });
    afterEach(() => resources.closeAll());
    return {
        get cluster() {
            return cluster!;
        },
    };
}

/**
 * One nats-server for the describe block it is called in (inside `describeWithNats`) and a cluster with a name of
 * its own for each test; what a test opened through `resources` is closed after it.
 */
export function usesCluster(resources: Resources): { readonly nats: NatsServer, readonly cluster: TestCluster } {
    let nats: NatsServer | undefined;
    let cluster: TestCluster | undefined;
    beforeAll(async () => {
        nats = await NatsServer.start();
    });
    afterAll(() => nats?.dispose());
    beforeEach(async () => {
        cluster = await TestCluster.create(nats!, resources);
    });
    afterEach(() => resources.closeAll());
    return {
        get nats() {
            return nats!;
        },
        get cluster() {
            return cluster!;
        },
    };
}

/** Resolves when `broker` routes to `peerId` on the broker with `brokerId` (or, without it, anywhere). */
export function sees(broker: RunningBroker, peerId: string, brokerId?: string): Promise<void> {
    const exchange = exchangeOf(broker);
    return eventually(() => {
        const location = exchange.lookup(peerId);
        return !!location && (brokerId === undefined || location.brokerId === brokerId);
    });
}

/** Resolves when `broker` no longer routes to `peerId`. */
export function forgets(broker: RunningBroker, peerId: string): Promise<void> {
    return eventually(() => exchangeOf(broker).lookup(peerId) === undefined);
}

/** Resolves when `broker` reaches NATS again with a rebuilt, caught-up directory view, and has heard the other brokers since. */
export async function recovered(broker: RunningBroker): Promise<void> {
    const exchange = exchangeOf(broker);
    // Healthy can hold for a moment before the broker notices that its watch stalled: then settling fails, and
    // the broker recovers on its next tick.
    await eventually(async () => exchange.healthy && exchange.hearsEveryBroker && await exchange.settled().then(() => true, () => false), 20_000);
}
