import { randomUUID } from 'crypto';
import { BrokerConfig, RunningBroker } from '../../server';
import { NatsPeerExchange } from '../../server/cluster/nats-exchange';
import { PeerExchange } from '../../server/exchange/peer-exchange';
import { eventually, Resources } from '../helpers';
import { NatsServer } from './nats-server';

/** Settings that make a cluster notice deaths quickly in tests; the waits are still for events, never for time. */
export const FAST_CLUSTER: Partial<BrokerConfig> = { clusterHeartbeatMs: 100, clusterDeathTimeoutMs: 1_000 };

/** Brokers of one cluster (a name of their own) on one nats-server. */
export class TestCluster {
    readonly name = `test-${randomUUID().slice(0, 8)}`;

    constructor(readonly nats: NatsServer, protected resources: Resources) {
    }

    broker(config: Partial<BrokerConfig> = {}): Promise<RunningBroker> {
        return this.resources.broker({ natsUrl: this.nats.url, cluster: this.name, ...FAST_CLUSTER, ...config });
    }

    /** Flags of `start` for a broker of this cluster in a child process. */
    flags(config: Partial<BrokerConfig> = {}): string[] {
        const settings = { natsUrl: this.nats.url, cluster: this.name, ...FAST_CLUSTER, ...config };
        return Object.entries(settings).flatMap(([name, value]) => [`--${name}`, String(value)]);
    }
}

export function exchangeOf(broker: RunningBroker): NatsPeerExchange {
    return broker.app.get<PeerExchange>() as NatsPeerExchange;
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
    beforeEach(() => {
        cluster = new TestCluster(nats!, resources);
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

/** Resolves when `broker` reaches NATS again with a rebuilt, caught-up directory view. */
export async function recovered(broker: RunningBroker): Promise<void> {
    const exchange = exchangeOf(broker);
    // Healthy can hold for a moment before the broker notices that its watch stalled: then settling fails, and
    // the broker recovers on its next tick.
    await eventually(async () => exchange.healthy && await exchange.settled().then(() => true, () => false), 20_000);
}
