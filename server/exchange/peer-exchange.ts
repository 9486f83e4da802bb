import { Observable } from 'rxjs';

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

    /** A peer-routed frame for the peer ID registered on this endpoint. */
    deliverRequest(frame: Uint8Array, origin: FrameOrigin): void;

    /** A sourceDest frame (a reply) addressed to this connection. */
    deliverReply(frame: Uint8Array): void;

    /** Another connection of the same owner took this endpoint's peer ID over. */
    replaced(peerId: string): void;
}

export interface PeerLocation {
    peerId: string;
    connectionId: string;
    /** Which broker holds the connection; the same for every peer of the in-process exchange. */
    brokerId: string;
    since: Date;
}

export interface ExchangePresence {
    kind: 'online' | 'offline' | 'capabilities';
    peerId: string;
    capabilities: string[];
    at: Date;
}

export interface RegisterOptions {
    /** Replace a live registration of the same ID (the owner proved ownership; the old connection is stale). */
    takeover?: boolean;
}

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

    /** Forgets the endpoint and releases every peer ID it held, at once. */
    detach(connectionId: string): void;

    /** @throws PeerIdTaken when another live connection holds the ID and `takeover` is not set. */
    register(peerId: string, connectionId: string, options?: RegisterOptions): Promise<void>;

    deregister(peerId: string, connectionId: string): Promise<void>;

    lookup(peerId: string): PeerLocation | undefined;

    /** Writes a peer-routed frame to the peer's connection. False when no live connection holds the ID. */
    route(peerId: string, frame: Uint8Array, origin: FrameOrigin): boolean;

    /** Writes a sourceDest frame to a connection. False when that connection is gone. */
    reply(connectionId: string, frame: Uint8Array): boolean;

    announce(peerId: string, capabilities: string[]): void;
}
