import { Subscription } from 'rxjs';
import type { BusKeyValue, ClusterBus } from './bus/cluster-bus';
import { ClusterNames } from './cluster-names';

/** The cluster's shared state (its tokens or registry bucket) is out of reach: NATS is down or restarting. */
export class ClusterStateUnavailable extends Error {
    readonly code = 'CLUSTER_STATE_UNAVAILABLE';
}

/**
 * One connection to the cluster's bus (NATS, or the in-memory bus of a test) for the state a cluster shares besides
 * its directory: the token bucket (`switchboard_<cluster>_tokens`) and the registry bucket (`switchboard_<cluster>_peers`). Used by a broker and
 * by the token commands of the CLI; it connects on first use, so a command that never touches NATS never connects.
 *
 * Buckets are bound (created if absent) again after every reconnect: a NATS restarted with an empty store has lost
 * them, and a watch over the old one stalls silently (see directory.ts); `reconnected` tells the watchers to rebuild.
 */
export class ClusterState {
    readonly names: ClusterNames;
    protected bus?: ClusterBus;
    protected opening?: Promise<void>;
    protected buckets = new Map<string, Promise<BusKeyValue>>();
    protected listeners = new Set<() => void>();
    protected linkEvents?: Subscription;

    /** @param bus a connection to the bus of brokers sharing one process (tests); without it, NATS at `natsUrl` */
    constructor(protected natsUrl: string, cluster: string, protected purpose: string, bus?: ClusterBus) {
        this.names = new ClusterNames(cluster);
        this.bus = bus;
    }

    get connected(): boolean {
        return this.bus?.connected ?? false;
    }

    protected get link(): ClusterBus {
        if (!this.bus) {
            // Required here, not imported: every broker holds a ClusterState, and one without a cluster never loads the NATS client.
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const { NatsBus } = require('./bus/nats-bus') as typeof import('./bus/nats-bus');
            this.bus = new NatsBus(this.natsUrl, `switchboard ${this.names.cluster} ${this.purpose}`, 500);
        }
        return this.bus;
    }

    /** @throws NatsUnreachable when no server of natsUrl answers */
    open(): Promise<void> {
        this.opening ??= this.link.open().then(() => {
            this.linkEvents = this.link.events.subscribe(event => {
                if (event !== 'reconnected') return;
                this.buckets.clear();
                for (const listener of this.listeners) listener();
            });
        });
        return this.opening;
    }

    /** The bucket `switchboard_<cluster>_<suffix>`, created if absent. */
    async bucket(suffix: string): Promise<BusKeyValue> {
        await this.open();
        if (!this.link.connected) throw new ClusterStateUnavailable(`The cluster's ${suffix} (NATS JetStream) are out of reach right now. Retry when NATS is back.`);
        let bucket = this.buckets.get(suffix);
        if (!bucket) {
            bucket = this.link.keyValue(`${this.names.bucket}_${suffix}`, { maxValueSize: 64 * 1024 });
            this.buckets.set(suffix, bucket);
            bucket.catch(() => this.buckets.get(suffix) === bucket && this.buckets.delete(suffix));
        }
        return bucket;
    }

    /** `listener` runs after each reconnect to NATS (watches must be rebuilt). @returns stops it */
    onReconnect(listener: () => void): () => void {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
    }

    /** Safe to call twice, and without open. */
    async close(): Promise<void> {
        this.listeners.clear();
        this.linkEvents?.unsubscribe();
        if (this.opening) await this.opening.catch(() => undefined);
        await this.bus?.close();
    }
}
