import { Session, TransportConnection } from '@deepkit/rpc';
import { PEER_REPLACED_CLOSE_CODE } from '@switchboard/protocol';
import { BrokerConfig } from '../config';
import { FrameOrigin, PeerExchange } from '../exchange/peer-exchange';
import { AuditEntry, AuditLog } from '../registry/audit-log';
import { AuditKind } from '../registry/entities';
import { PeerRegistry } from '../registry/peer-registry';
import { SwitchboardSecurity } from '../security';
import { BrokerStats } from '../stats';

/** The singletons every broker connection works with. */
export class BrokerServices {
    constructor(
        public config: BrokerConfig,
        public exchange: PeerExchange,
        public registry: PeerRegistry,
        public audit: AuditLog,
        public stats: BrokerStats,
    ) {
    }
}

/**
 * The transport under a broker connection. `closeWith` ends the socket with a WebSocket close code and a reason the
 * client can read (the plain `close()` of Deepkit's interface has neither).
 */
export interface ReasonedTransport extends TransportConnection {
    closeWith?(code: number, reason: string): void;
    /**
     * Whether `bytes` more may be queued now without overflowing the connection's unsent-bytes bound. A false answer
     * also starts the slow-consumer watch: a reader that stays full is closed.
     */
    hasRoomFor?(bytes: number): boolean;
    /** Writes one frame given as its header and a body shared with other frames, without joining them. */
    writeParts?(header: Uint8Array, body: Uint8Array): void;
}

/** WebSocket close codes the broker uses (4000–4999 are for applications). */
export const CloseCode = {
    /** Too many protocol violations (malformed frames, frames only the broker may write, …). */
    protocolViolation: 4400,
    /** The connection's outgoing buffer passed its bound: it does not read what is sent to it. */
    slowConsumer: 4408,
    /** No handshake, or no traffic at all, within the configured time. */
    idle: 4410,
    /** Too many connections from one address. */
    tooManyConnections: 4429,
    /** The token this connection authenticated with was revoked. */
    tokenRevoked: 4401,
    /** Missed its pongs: frozen or half-open. */
    unresponsive: 4411,
    /** The broker lost its cluster (NATS) for longer than the death timeout: reconnect to another broker. */
    clusterLost: 4503,
    /** Its peer ID was taken over by its owner (same reclaim secret or token): the client must not take it back. */
    replaced: PEER_REPLACED_CLOSE_CODE,
} as const;

/**
 * What the parts of a broker connection (frame gate, call ledger, router, multicast, registrar) see of it: the
 * Deepkit connection keeps its state and its socket, and hands each part this view instead of itself.
 */
export interface ConnectionSide {
    /** The connection id as Deepkit writes it into frames (16 bytes). */
    readonly id: Uint8Array;
    readonly connectionId: string;
    readonly services: BrokerServices;
    readonly security: SwitchboardSecurity;
    /** The peer ID this connection holds, if any. */
    peerId: string | undefined;
    readonly sessionName: string;
    readonly typedErrors: boolean;
    readonly closed: boolean;
    session(): Session;
    /** Who this connection is, as receivers are told. */
    origin(): FrameOrigin;
    transport(): ReasonedTransport;
    writeFrame(frame: Uint8Array): void;
    writeParts(header: Uint8Array, body: Uint8Array): void;
    record(kind: AuditKind, entry: AuditEntry): void;
    closeFor(code: number, reason: string): void;
    close(): void;
}
