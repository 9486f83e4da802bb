import type { KV } from '@nats-io/kv';
import { Subscription } from 'rxjs';
import { ClusterNames } from './cluster-names';
import { NatsLink } from './nats-link';

/** The cluster's shared state (its tokens or registry bucket) is out of reach: NATS is down or restarting. */
export class ClusterStateUnavailable extends Error {
    readonly code = 'CLUSTER_STATE_UNAVAILABLE';
}

/**
 * One NATS connection for the state a cluster shares besides its directory: the token bucket
 * (`switchboard_<cluster>_tokens`) and the registry bucket (`switchboard_<cluster>_peers`). Used by a broker and
 * by the token commands of the CLI; it connects on first use, so a command that never touches NATS never connects.
 *
 * Buckets are bound (created if absent) again after every reconnect: a NATS restarted with an empty store has lost
 * them, and a watch over the old one stalls silently (see directory.ts); `reconnected` tells the watchers to rebuild.
 */
export class ClusterState {
    readonly names: ClusterNames;
    protected readonly link: NatsLink;
    protected opening?: Promise<void>;
    protected buckets = new Map<string, Promise<KV>>();
    protected listeners = new Set<() => void>();
    protected linkEvents?: Subscription;

    constructor(natsUrl: string, cluster: string, purpose: string) {
        this.names = new ClusterNames(cluster);
        this.link = new NatsLink(natsUrl, `switchboard ${cluster} ${purpose}`, 500);
    }

    get connected(): boolean {
        return this.link.connected;
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
    async bucket(suffix: string): Promise<KV> {
        await this.open();
        if (!this.link.connected) throw new ClusterStateUnavailable(`The cluster's ${suffix} (NATS JetStream) are out of reach right now. Retry when NATS is back.`);
        let bucket = this.buckets.get(suffix);
        if (!bucket) {
            // Required here, not imported: every broker holds a ClusterState, and one without a cluster never loads the NATS client.
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const { Kvm } = require('@nats-io/kv') as typeof import('@nats-io/kv');
            bucket = new Kvm(this.link.nc).create(`${this.names.bucket}_${suffix}`, { history: 1, maxValueSize: 64 * 1024 });
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
        await this.link.close();
    }
}
