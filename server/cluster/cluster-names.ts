/**
 * Where a cluster lives on NATS. Everything is named after the cluster, so two clusters on one NATS never see each
 * other: their own KV bucket, their own subject prefix.
 */

/** Cluster names and broker IDs become NATS subject tokens and KV key tokens: no dots, no wildcards. */
export const CLUSTER_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Empty means "generate one". */
export const BROKER_ID_PATTERN = /^([A-Za-z0-9_-]{1,64})?$/;

export class ClusterNames {
    readonly bucket: string;
    readonly prefix: string;
    /** Every broker hears it: heartbeats. */
    readonly control: string;

    constructor(readonly cluster: string) {
        this.bucket = `switchboard_${cluster}`;
        this.prefix = `switchboard.${cluster}`;
        this.control = `${this.prefix}.control`;
    }

    /** The one subject a broker receives routed frames on. */
    inbox(brokerId: string): string {
        return `${this.prefix}.b.${brokerId}`;
    }

    /** The JetStream stream of the cluster's audit trail (cluster-audit.ts). */
    get auditStream(): string {
        return `${this.bucket}_audit`;
    }

    /** Where one broker publishes its audit rows. */
    auditSubject(brokerId: string): string {
        return `${this.prefix}.audit.${brokerId}`;
    }
}

/**
 * Peer IDs are letters, digits and `._-` (shared/peer-id.ts); in a KV key a dot separates tokens, so it becomes `=`,
 * which no peer ID contains: the mapping is one-to-one.
 */
export const PEER_KEY_PREFIX = 'p.';

export function peerKey(peerId: string): string {
    return PEER_KEY_PREFIX + peerId.replace(/\./g, '=');
}

export function peerIdOfKey(key: string): string {
    return key.slice(PEER_KEY_PREFIX.length).replace(/=/g, '.');
}

/** A key each broker rewrites on every heartbeat: its own watch must see it, or the watch has stalled. */
export const PROBE_KEY_PREFIX = 'w.';

export function probeKey(brokerId: string): string {
    return PROBE_KEY_PREFIX + brokerId;
}

/** Created (KV create: one winner) by the broker that reaps a dead broker's directory entries. */
export function reaperLockKey(brokerId: string): string {
    return 'reap.' + brokerId;
}
