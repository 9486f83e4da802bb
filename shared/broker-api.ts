import { ControllerSymbol } from '@deepkit/rpc';
import { entity, MaxLength } from '@deepkit/type';
import { Observable } from 'rxjs';
import { PeerId } from './peer-id';
import { PeerInfo } from './peer-info';
import { AuditRecord, BrokerActivity, DashboardEvent } from './dashboard';

/** A capability a peer announces, e.g. `chat`, `files`, `relay`. */
export type Capability = string & MaxLength<64>;

// In a file of its own, so the dashboard's shapes can name it without importing the broker API (an import cycle).
export { PeerInfo };

/** `synced` ends the snapshot of a `presence(true)` subscription: from then on the subscriber knows everyone online. */
export type PresenceKind = 'online' | 'offline' | 'capabilities' | 'synced';

/**
 * One change in who is online. `sequence` grows by one per event on a broker, so a subscriber can tell it saw
 * every event in order.
 */
@entity.name('@switchboard/PresenceEvent')
export class PresenceEvent {
    constructor(
        public kind: PresenceKind,
        public peerId: string,
        public capabilities: string[] = [],
        public at: Date = new Date,
        public sequence: number = 0,
    ) {
    }
}

/**
 * Presence changes sent together: the snapshot in bounded parts (the last one `synced`), then the changes of one
 * event-loop turn of the broker, in the order they happened. One frame however many peers changed in that turn.
 */
@entity.name('@switchboard/PresenceBatch')
export class PresenceBatch {
    constructor(
        public events: PresenceEvent[] = [],
        /** The snapshot is complete with this batch: from then on the subscriber knows the state of what it follows. */
        public synced: boolean = false,
    ) {
    }
}

/** Most peer IDs one `watch` or `unwatch` call names (a connection may watch up to the broker's limit in several). */
export const MAX_WATCH_IDS_PER_CALL = 1000;

export interface PeerFilter {
    online?: boolean;
    capability?: Capability;
}

export type AuthMode = 'open' | 'token';

/** The broker's view of the calling connection. */
export interface WhoAmI {
    connectionId: string;
    /** The session name: the token's name in token mode, `anonymous` in open mode. */
    session: string;
    authenticated: boolean;
    peerId?: string;
    authMode: AuthMode;
    brokerId: string;
    /** The broker's recommended default call timeout; the SDK uses it unless told otherwise. */
    callTimeoutMs: number;
    maxPayloadBytes: number;
}

export interface Registration {
    peerId: string;
    /**
     * Open mode: the secret that lets this owner take the ID over again, even while the broker still holds a stale
     * connection for it. Keep it; it is shown once per rotation. Token mode: unset, the token is the proof.
     */
    reclaimSecret?: string;
    /** True when a stale live connection of the same owner was replaced. */
    tookOver: boolean;
}

/** What a `join` registers with. */
export interface JoinOptions {
    /** As for `register`. */
    reclaimSecret?: string;
    /** Announced right after the registration, as with `announce`. */
    capabilities?: Capability[];
}

/** The answer to `join`: what `register`, `announce` and `whoami` answer, in one round trip. */
export interface Joined {
    registration: Registration;
    /** Set when capabilities were given. */
    info?: PeerInfo;
    whoami: WhoAmI;
}

/** The broker's own RPC controller, served on every broker. */
export interface BrokerApi {
    whoami(): WhoAmI;

    /**
     * Registers this connection under `peerId`, announces the capabilities (when given) and answers with what
     * `whoami` tells, in one round trip: the SDK's join. `register`, `announce` and `whoami` stay for other clients.
     */
    join(peerId: PeerId, options?: JoinOptions): Promise<Joined>;

    /** Registers this connection under `peerId`. Stock Deepkit clients can use `registerAsPeer(id)` instead. */
    register(peerId: PeerId, reclaimSecret?: string): Promise<Registration>;

    deregister(): Promise<void>;

    /** Replaces the capabilities of the peer registered on this connection. */
    announce(capabilities: Capability[]): Promise<PeerInfo>;

    listPeers(filter?: PeerFilter): PeerInfo[];

    getPeer(peerId: PeerId): PeerInfo;

    /**
     * Live presence changes of every peer, one frame each; with `snapshot`, first one `online` event per peer online
     * now, then `synced`. Costs the broker work per subscriber on every change anywhere: for stock Deepkit clients
     * and dashboards. SDK peers use `watch` and `presenceBatches`.
     */
    presence(snapshot?: boolean): Observable<PresenceEvent>;

    /**
     * Adds peer IDs to what this connection follows (its interest) and answers their state now: `online` (with
     * capabilities) or `offline`, one event each, sequence 0. Their changes then arrive on `presenceBatches`.
     * QuotaExceeded past the broker's limit of watched IDs per connection.
     */
    watch(peerIds: PeerId[] & MaxLength<typeof MAX_WATCH_IDS_PER_CALL>): PresenceEvent[];

    /** Stops following these peer IDs. */
    unwatch(peerIds: PeerId[] & MaxLength<typeof MAX_WATCH_IDS_PER_CALL>): void;

    /**
     * Presence of the watched peer IDs (or of `everyone`), batched: the snapshot of their state in bounded batches
     * (the last one `synced`), then the changes of each event-loop turn as one batch.
     */
    presenceBatches(everyone?: boolean): Observable<PresenceBatch>;

    /**
     * The operator's live view: peers, traffic, transfers and audit decisions (see DashboardEvent). Admin tokens only
     * in token mode (AccessDenied `admin-only`); anyone in open mode.
     */
    dashboard(): Observable<DashboardEvent>;
}

export const BrokerApi = ControllerSymbol<BrokerApi>('switchboard/broker', [PeerInfo, PresenceEvent, PresenceBatch, DashboardEvent, BrokerActivity, AuditRecord]);
