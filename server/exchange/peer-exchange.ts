import type { SwitchboardError } from '@switchboard/protocol';
import { Observable } from 'rxjs';

/** An audit row as the exchange sees it (AuditEvent's fields). */
export interface AuditRowLike {
    kind: string;
    at: Date;
    brokerId: string;
    peerId?: string;
    target?: string;
    controller?: string;
    action?: string;
    reason?: string;
    session?: string;
    count?: number;
    lastAt?: Date;
}

/** Who sent a routed frame, as the broker verified it. Never taken from the frame itself. */
export interface FrameOrigin {
    /** Hex of the sender's 16-byte connection id. */
    connectionId: string;
    /** The sender's registered peer ID, if it registered one. */
    peerId?: string;
    /** The sender's session name (token name, or `anonymous`). */
    session: string;
    /** Whether the sender decodes Switchboard's error classes (see SwitchboardFrame.Hello). */
    typedErrors?: boolean;
}

/** The exchange's handle on one broker-side connection: where frames for that connection are written. */
export interface ExchangeEndpoint {
    readonly connectionId: string;

    /**
     * A peer-routed frame for the peer ID registered on this endpoint. False: refused, since the endpoint's reader has
     * no room for it (ReceiverBusy); the endpoint has answered the caller itself, through `reply`.
     */
    deliverRequest(frame: Uint8Array, origin: FrameOrigin): boolean | void;

    /** The same, for a frame given as its header and a body other frames share (a multicast copy); never joined. */
    deliverRequestParts?(header: Uint8Array, body: Uint8Array, origin: FrameOrigin): boolean | void;

    /** A sourceDest frame (a reply) addressed to this connection. */
    deliverReply(frame: Uint8Array): void;

    /**
     * Another connection of the same owner took this endpoint's peer ID over. May come before this endpoint's own
     * register() has resolved (a cluster's directory watch shows the newer holder first): it counts for that ID too.
     */
    replaced(peerId: string): void;

    /**
     * The exchange can no longer make this connection reachable (a cluster broker cut off from NATS past the death
     * timeout): close it with `reason`, so its client moves to another broker.
     */
    disconnect?(reason: string): void;
}

export interface PeerLocation {
    peerId: string;
    connectionId: string;
    /** Which broker holds the connection; the same for every peer of the in-process exchange. */
    brokerId: string;
    since: Date;
}

/** One broker of the cluster as this exchange sees it (status, metrics, dashboard). */
export interface BrokerSummary {
    brokerId: string;
    /** Heard from within the death timeout; this broker itself is always alive. */
    alive: boolean;
    /** Peers registered on it. */
    peers: number;
    /** When it was last heard from; now, for this broker itself. */
    lastSeen: Date;
    /** Milliseconds since its last heartbeat arrived (0 for this broker itself); absent on a single broker. */
    heartbeatAgeMs?: number;
    /**
     * Its link to the cluster's NATS: this broker's own state; for another broker, 'up' while its heartbeats arrive (a
     * broker cut off from NATS cannot send one) and 'down' once it is dead. Absent on a single broker.
     */
    natsLink?: 'up' | 'down';
}

export interface ExchangePresence {
    kind: 'online' | 'offline' | 'capabilities';
    peerId: string;
    capabilities: string[];
    at: Date;
    /** Offline after its connection was lost: the ID is held for its owner until then (RegisterOptions.graceMs). */
    heldUntil?: Date;
}

/** Who may take a live peer ID over: the same token (token mode) or the holder of the reclaim secret (open mode). */
export interface PeerOwner {
    /** Session name of the registering connection (token name, or `anonymous`). */
    session: string;
    /** Hash of the reclaim secret handed out with the registration (open mode). */
    reclaimSecretHash?: string;
}

export interface RegisterOptions {
    /** Replace a live registration of the same ID (the owner proved ownership; the old connection is stale). */
    takeover?: boolean;
    /** Stored with the registration, where every broker of a cluster reads it (ownerOf). */
    owner?: PeerOwner;
    /**
     * Who the registering client proved to be: its session and the hash of the reclaim secret it presented (`owner`
     * holds the hash of the secret it is handed). A hold the broker cannot read synchronously (another broker's) is
     * released to a claimant who is its owner.
     */
    claimant?: PeerOwner;
    /**
     * Milliseconds the ID stays held for `owner` after its connection is lost without a deregister (`detach`): within
     * them only a register with `takeover` (the owner) gets it. 0 or unset: released at once.
     */
    graceMs?: number;
}

/**
 * What became of a routed frame: not routable (false), written to the target's connection (true), handed to the
 * cluster broker that holds the target ('forwarded'), or refused by a receiver with no room for it ('busy'; the
 * caller was answered).
 */
export type RouteResult = boolean | 'busy' | 'forwarded';


/**
 * Where peer IDs live and how frames reach them. The broker's connections attach to it, register IDs, and hand it
 * raw frames; it never looks inside a payload. Routing is synchronous so frames keep their order and an unknown
 * destination is known at once: a cluster implementation keeps a replicated directory of peer locations for that.
 *
 * Every implementation runs the compliance suite in tests/exchange/exchange-compliance.ts.
 */
export interface PeerExchange {
    readonly brokerId: string;

    /** Online/offline/capabilities changes for every peer the exchange knows, in the order they happened. */
    readonly presence: Observable<ExchangePresence>;

    /** Safe to call twice. */
    start(): Promise<void>;

    /** Safe to call twice, and before start. No presence events after it. */
    stop(): Promise<void>;

    attach(endpoint: ExchangeEndpoint): void;

    /**
     * The connection was lost (not a clean deregister): forgets the endpoint; every peer ID it held goes offline at
     * once (unroutable, presence 'offline') but stays held for its owner for the registration's `graceMs`.
     */
    detach(connectionId: string): void;

    /**
     * @throws PeerIdTaken when another live connection holds the ID, or it is held for its owner after a lost
     * connection, and `takeover` (ownership proven) is not set.
     */
    register(peerId: string, connectionId: string, options?: RegisterOptions): Promise<void>;

    /** A clean release by the holding connection: the ID is free for anyone at once (no grace hold). */
    deregister(peerId: string, connectionId: string): Promise<void>;

    /** Until when an offline ID is held for its owner after a lost connection; undefined when it is not held. */
    heldUntil(peerId: string): Date | undefined;

    lookup(peerId: string): PeerLocation | undefined;

    /** The owner of a live or held registration of `peerId`, wherever it is; undefined when the ID is free. */
    ownerOf(peerId: string): PeerOwner | undefined;

    /**
     * Writes a peer-routed frame to the peer's connection. False when no live connection holds the ID; 'busy' when
     * the receiving connection had no room for it and answered the caller with ReceiverBusy.
     */
    route(peerId: string, frame: Uint8Array, origin: FrameOrigin): RouteResult;

    /**
     * `route` for a frame given as its header and a body shared by many frames (a multicast's copies): an exchange
     * that implements it hands both to the endpoint without joining them; without it, callers join them and `route`.
     */
    routeParts?(peerId: string, header: Uint8Array, body: Uint8Array, origin: FrameOrigin): RouteResult;

    /**
     * Why `route` just refused `peerId`, when the cause is not the target's absence (a cluster exchange cut off from
     * its bus: ClusterUnavailable). Undefined: the target is offline or unknown.
     */
    refusal?(peerId: string): SwitchboardError | undefined;

    /** One audit row of this broker, for the cluster's trail (a cluster exchange publishes it; see cluster-audit.ts). */
    recordAudit?(row: AuditRowLike): void;

    /** Writes a sourceDest frame to a connection. False when that connection is gone. */
    reply(connectionId: string, frame: Uint8Array): boolean;

    announce(peerId: string, capabilities: string[]): void;

    /** The brokers this exchange knows, this one first; a single broker lists only itself. */
    brokers(): BrokerSummary[];
}
