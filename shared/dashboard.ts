import { entity } from '@deepkit/type';
import { PeerInfo } from './peer-info';

/**
 * A stream the broker is routing now: an action of `from` returning an Observable that `to` subscribed to (a file's
 * chunks, a document's updates …). The broker tells streams apart by Deepkit's message types, never by contract.
 */
export interface ActiveTransfer {
    /** The subscribing peer (its session name if it did not register). */
    to: string;
    /** The peer serving the stream. */
    from: string;
    since: Date;
    /** Bytes of the items it carried so far (frames as routed). */
    bytes: number;
}

/** One broker of the cluster, as the dashboard shows it. */
export interface ClusterBroker {
    brokerId: string;
    alive: boolean;
    /** Peers registered on it. */
    peers: number;
    lastSeen: Date;
    /** Milliseconds since its last heartbeat (0 for the broker serving the dashboard); absent on a single broker. */
    heartbeatAgeMs?: number;
    /** Its link to the cluster's NATS ('up' for another broker while its heartbeats arrive); absent on a single broker. */
    natsLink?: 'up' | 'down';
}

/** The broker's traffic, as the dashboard shows it; rates are per second over the last tick. */
@entity.name('@switchboard/BrokerActivity')
export class BrokerActivity {
    at: Date = new Date;
    /** The broker serving this dashboard. */
    brokerId: string = '';
    /** Every broker of its cluster, this one first; a single broker lists only itself. */
    brokers: ClusterBroker[] = [];
    uptimeSeconds: number = 0;
    peersOnline: number = 0;
    peersKnown: number = 0;
    callsRouted: number = 0;
    callsPerSecond: number = 0;
    bytesRouted: number = 0;
    bytesPerSecond: number = 0;
    /** Refusals since start, by error code. */
    refusals: Record<string, number> = {};
    transfers: ActiveTransfer[] = [];
}

/** One broker's peers online at a sample's time: a cluster's chart draws a line per broker. */
export interface BrokerPeers {
    brokerId: string;
    peers: number;
}

/** One second of a broker's recent history, as the dashboard plots it (the last 15 minutes, one sample a second). */
@entity.name('@switchboard/TrendSample')
export class TrendSample {
    at: Date = new Date;
    /** Peer calls delivered by this broker in the second. */
    callsPerSecond: number = 0;
    /** Call latency at this broker (request routed → final reply routed) in the second, ms; 0 without calls. */
    p50Ms: number = 0;
    p99Ms: number = 0;
    /** Peers online in the whole namespace (every broker of a cluster). */
    peersOnline: number = 0;
    /** Requests this broker refused in the second. */
    refusalsPerSecond: number = 0;
    /** In a cluster: peers online on each broker (empty for a single broker). */
    brokers: BrokerPeers[] = [];
}

/** One audit decision as the dashboard shows it (the `audit` command reads the same rows from SQLite). */
@entity.name('@switchboard/AuditRecord')
export class AuditRecord {
    constructor(
        public at: Date,
        public kind: string,
        public peerId?: string,
        public target?: string,
        public action?: string,
        /** A denial's error code, or a short note. */
        public reason?: string,
    ) {
    }
}

export type DashboardEventKind = 'snapshot' | 'peer' | 'activity' | 'audit';

/**
 * One update of the broker dashboard stream. It starts with a `snapshot` (every known peer, current activity,
 * recent audit events, the last 15 minutes of trend samples); then `peer` with the peers whose presence or
 * capabilities changed in the last moment, `activity` once a second (with the trend samples taken since the last
 * one), and `audit` with the decisions of the last moment (newest last).
 */
@entity.name('@switchboard/DashboardEvent')
export class DashboardEvent {
    constructor(
        public kind: DashboardEventKind,
        public peers: PeerInfo[] = [],
        public activity?: BrokerActivity,
        public audit: AuditRecord[] = [],
        public trend: TrendSample[] = [],
    ) {
    }
}
