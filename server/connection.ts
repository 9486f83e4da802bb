import {
    rpcAuthenticate,
    RpcKernelConnection,
    RpcMessage,
    RpcMessageBuilder,
    rpcPeerRegister,
    rpcResponseAuthenticate,
    RpcTypes,
    Session,
} from '@deepkit/rpc';
import { FrameHeader, ValidatingServerAction, connectionKey, Route } from '@switchboard/protocol/internal';
import { Registration } from '@switchboard/protocol';
import { ExchangeEndpoint, FrameOrigin } from './exchange/peer-exchange';
import { AuditEntry } from './registry/audit-log';
import { AuditKind } from './registry/entities';
import { ANONYMOUS, ConnectionIdentity, SwitchboardSecurity } from './security';
import { CallLedger } from './gate/call-ledger';
import { BrokerServices, CloseCode, ConnectionSide, ReasonedTransport } from './gate/connection-side';
import { FrameGate, FrameHandlers } from './gate/frame-gate';
import { Multicast } from './gate/multicast';
import { Registrar } from './gate/registrar';
import { RequestRouter } from './gate/request-router';

export { BrokerServices, CloseCode, ReasonedTransport };

/** A Deepkit message built from a header `inspectFrame` already read, so Deepkit never parses the header again. */
class CheckedRpcMessage extends RpcMessage {
    constructor(header: FrameHeader, frame: Uint8Array) {
        super(header.id, header.composite, header.type, header.route, header.bodyOffset, header.size - header.bodyOffset, frame);
        if (header.peerId) this.peerId = header.peerId;
    }
}

/**
 * One client connection to the broker: the Deepkit adapter over the parts in gate/, each with one job.
 *
 * Deepkit's stock connection forwards peer frames unchecked and forgets peers on disconnect. This one:
 * - checks every frame whole before any Deepkit reader sees it, reassembles chunks, rate-limits (FrameGate);
 * - routes requests to other peers after the security class allowed them, with a verified source (RequestRouter,
 *   Multicast);
 * - introduces each caller to the receiver, lets a connection answer only the requests it received, and fails the
 *   ones it never answered when it goes (CallLedger);
 * - registers, deregisters and gives up its peer ID (Registrar).
 */
export class BrokerConnection extends RpcKernelConnection implements ExchangeEndpoint, ConnectionIdentity {
    readonly connectionId = connectionKey(this.id);
    protected override actionHandler = new ValidatingServerAction(this.stats, this.cache, this, this.controllers, this.injector, this.eventDispatcher, this.security, this.sessionState, this.logger);
    protected services!: BrokerServices;
    protected gate!: SwitchboardSecurity;
    protected frames!: FrameGate;
    protected ledger!: CallLedger;
    protected router!: RequestRouter;
    protected multicasts!: Multicast;
    protected registrar!: Registrar;
    /** Set by the client's Hello frame: it decodes Switchboard's error classes. */
    typedErrors = false;
    protected cachedOrigin?: FrameOrigin;

    /** Called by the kernel right after construction; Deepkit's constructor signature is fixed. */
    attachTo(services: BrokerServices, gate: SwitchboardSecurity): void {
        this.services = services;
        this.gate = gate;
        gate.identify(this);
        const side = this.side();
        this.frames = new FrameGate(side, new BrokerConnection.Handlers(this));
        this.ledger = new CallLedger(side, this.frames);
        this.router = new RequestRouter(side, this.frames, this.ledger);
        this.multicasts = new Multicast(side, this.frames, this.ledger);
        this.registrar = new Registrar(side, this.ledger);
        services.exchange.attach(this);
    }

    get peerId(): string | undefined {
        return this.myPeerId;
    }

    get sessionName(): string {
        const name = this.sessionState.getSession().username;
        return name === 'anon' ? ANONYMOUS : name;
    }

    /** May watch the whole broker: anyone in open mode, admin tokens in token mode. */
    isAdmin(): boolean {
        return this.gate.isAdmin(this.sessionState.getSession());
    }

    isAuthenticated(): boolean {
        return !this.sessionState.getSession().isAnonymous();
    }

    // ---- incoming -------------------------------------------------------------------------------------------

    /** Everything a client sends enters here, as one WebSocket message holding one or more whole frames. */
    override feed(buffer: Uint8Array, bytes?: number): void {
        const end = bytes ?? buffer.byteLength;
        this.stats.increase('incomingBytes', end);
        this.frames.feed(buffer, end);
    }

    override async onMessage(message: RpcMessage): Promise<void> {
        // Routed frames never come this way (the frame gate routes them from their header); Deepkit's own routing of
        // them would bypass the gate.
        if (message.routeType === Route.peer || message.routeType === Route.sourceDest) return;
        return super.onMessage(message);
    }

    // ---- delivered to us by the exchange ----------------------------------------------------------------------

    deliverRequest(frame: Uint8Array, origin: FrameOrigin): boolean {
        return this.ledger.deliver(frame, frame.byteLength, origin, () => this.writeFrame(frame));
    }

    deliverRequestParts(header: Uint8Array, body: Uint8Array, origin: FrameOrigin): boolean {
        return this.ledger.deliver(header, header.byteLength + body.byteLength, origin, () => this.writeParts(header, body));
    }

    deliverReply(frame: Uint8Array): void {
        this.writeFrame(frame);
    }

    disconnect(reason: string): void {
        this.closeFor(CloseCode.clusterLost, reason);
    }

    replaced(peerId: string): void {
        this.registrar.replaced(peerId);
    }

    // ---- registration and authentication ----------------------------------------------------------------------

    /** See Registrar.register: a live ID may be taken over only by its owner. */
    registerPeer(peerId: string, reclaimSecret?: string): Promise<Registration> {
        return this.registrar.register(peerId, reclaimSecret);
    }

    deregisterPeer(): Promise<void> {
        return this.registrar.deregister();
    }

    /** Deepkit's own `registerAsPeer(id)` message, so stock clients get the same rules. */
    protected override async registerAsPeer(message: RpcMessage, response: RpcMessageBuilder): Promise<void> {
        try {
            await this.registerPeer(message.parseBody<rpcPeerRegister>().id);
            response.ack();
        } catch (error) {
            response.error(this.gate.transformError(error as Error));
        }
    }

    protected override async deregisterAsPeer(message: RpcMessage, response: RpcMessageBuilder): Promise<void> {
        try {
            await this.deregisterPeer();
            response.ack();
        } catch (error) {
            response.error(this.gate.transformError(error as Error));
        }
    }

    protected override async authenticate(message: RpcMessage, response: RpcMessageBuilder): Promise<void> {
        try {
            const session = await this.gate.authenticate(message.parseBody<rpcAuthenticate>().token);
            this.sessionState.setSession(session);
            this.cachedOrigin = undefined;
            response.reply<rpcResponseAuthenticate>(RpcTypes.AuthenticateResponse, { username: session.username });
        } catch (error) {
            this.services.stats.refused('AUTHENTICATION_FAILED');
            this.record('auth-failed', { reason: 'AUTHENTICATION_FAILED' });
            response.error(this.gate.transformError(error as Error));
        }
    }

    // ---- closing ----------------------------------------------------------------------------------------------

    /**
     * Ends this connection and tells the client why (WebSocket close code and reason); the audit trail keeps one row.
     * Everything `close()` does (releasing the ID, failing pending calls) happens as well.
     */
    closeFor(code: number, reason: string): void {
        if (this.closed) return;
        this.services.stats.refused('CONNECTION_CLOSED');
        this.record('closed', { reason });
        // The reason goes first: close() below closes the socket without one, and a second close is ignored.
        (this.transportConnection as ReasonedTransport).closeWith?.(code, reason);
        this.close();
    }

    /** Releases its peer ID, fails the requests it never answered, and tells the peers it called. */
    override close(): void {
        if (this.closed) return;
        // A peer that deregistered (Peer.close() does, then disconnects) may still owe answers to its callers.
        const peerId = this.myPeerId ?? this.registrar.deregisteredAs;
        super.close();
        this.services.exchange.detach(this.connectionId);
        this.services.stats.transfersClosed(this.connectionId, peerId);

        if (peerId) {
            this.ledger.failUnanswered(peerId, 'disconnected before answering');
            this.record('disconnect', { peerId });
        }
        this.frames.close();
        this.ledger.close({ ...this.origin(), peerId });
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    protected writeFrame(frame: Uint8Array): void {
        if (this.closed) return;
        this.transportConnection.writeBinary!(frame);
    }

    protected writeParts(header: Uint8Array, body: Uint8Array): void {
        if (this.closed) return;
        const transport = this.transportConnection as ReasonedTransport;
        if (transport.writeParts) transport.writeParts(header, body);
        else transport.writeBinary!(Buffer.concat([header, body]));
    }

    /** Who this connection is, as receivers are told; cached, since every routed frame carries it. */
    protected origin(): FrameOrigin {
        const origin = this.cachedOrigin;
        if (origin && origin.peerId === this.myPeerId) return origin;
        return this.cachedOrigin = { connectionId: this.connectionId, peerId: this.myPeerId, session: this.sessionName, typedErrors: this.typedErrors };
    }

    protected record(kind: AuditKind, entry: AuditEntry): void {
        this.services.audit.record(kind, {
            peerId: this.myPeerId,
            session: this.sessionName,
            connectionId: this.connectionId,
            ...entry,
        });
    }

    /**
     * What the parts see of this connection: one object whose members live on its class, not a literal of getters and
     * arrow functions, which cost every connection about 2 KiB of closures (measured on a broker of idle peers).
     */
    protected side(): ConnectionSide {
        return new BrokerConnection.Side(this);
    }

    /** Where the frame gate hands this connection's frames (a class, like Side, for the same reason). */
    private static Handlers = class implements FrameHandlers {
        constructor(private connection: BrokerConnection) {
        }

        request(header: FrameHeader, frame: Uint8Array): void { this.connection.router.route(header, frame); }
        reply(header: FrameHeader, frame: Uint8Array): void { this.connection.ledger.reply(header, frame); }
        multicast(header: FrameHeader, frame: Uint8Array): void { this.connection.multicasts.send(header, frame); }

        hello(): void {
            const connection = this.connection;
            connection.typedErrors = connection.gate.typedErrors = true;
            connection.cachedOrigin = undefined;
        }

        /** Deepkit's own reader, which BrokerConnection.feed overrides. */
        toDeepkitReader(frame: Uint8Array): void { RpcKernelConnection.prototype.feed.call(this.connection, frame); }
        toBroker(header: FrameHeader, frame: Uint8Array): void { this.connection.handleMessage(new CheckedRpcMessage(header, frame)); }
    };

    // Nested, so that it may call this class's protected members.
    private static Side = class implements ConnectionSide {
        constructor(private connection: BrokerConnection) {
        }

        get id(): Uint8Array { return this.connection.id; }
        get connectionId(): string { return this.connection.connectionId; }
        get services(): BrokerServices { return this.connection.services; }
        get security(): SwitchboardSecurity { return this.connection.gate; }
        get peerId(): string | undefined { return this.connection.myPeerId; }
        set peerId(peerId: string | undefined) { this.connection.myPeerId = peerId; }
        get sessionName(): string { return this.connection.sessionName; }
        get typedErrors(): boolean { return this.connection.typedErrors; }
        get closed(): boolean { return this.connection.closed; }
        session(): Session { return this.connection.sessionState.getSession(); }
        origin(): FrameOrigin { return this.connection.origin(); }
        transport(): ReasonedTransport { return this.connection.transportConnection as ReasonedTransport; }
        writeFrame(frame: Uint8Array): void { this.connection.writeFrame(frame); }
        writeParts(header: Uint8Array, body: Uint8Array): void { this.connection.writeParts(header, body); }
        record(kind: AuditKind, entry: AuditEntry): void { this.connection.record(kind, entry); }
        closeFor(code: number, reason: string): void { this.connection.closeFor(code, reason); }
        close(): void { this.connection.close(); }
    };
}
