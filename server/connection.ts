import { timingSafeEqual } from 'crypto';
import {
    rpcAuthenticate,
    RpcKernelConnection,
    RpcMessage,
    RpcMessageBuilder,
    rpcPeerRegister,
    rpcResponseAuthenticate,
    RpcTypes,
    TransportConnection,
} from '@deepkit/rpc';
import { AccessDenied, MalformedMessage, NotRegistered, PayloadTooLarge, PEER_REPLACED_CLOSE_CODE, PeerNotFound, PeerOffline, PeerReplaced, RateLimited, ReceiverBusy, SwitchboardError } from '@switchboard/protocol/errors';
import { declaredFrameSize, FrameHeader, inspectFrame, MIN_FRAME_SIZE } from '@switchboard/protocol/frame-check';
import { assertValidPeerId } from '@switchboard/protocol/peer-id';
import { ValidatingServerAction } from '@switchboard/protocol/validation';
import { Registration } from '@switchboard/protocol/broker-api';
import { FilesApi } from '@switchboard/protocol/files-api';
import { BROKER_ONLY_FRAMES, connectionKey, encodeCallerGone, encodeCallerIdentity, MulticastOutcome, Route, SwitchboardFrame } from '@switchboard/protocol/wire';
import { BrokerConfig } from './config';
import { ExchangeEndpoint, FrameOrigin, PeerExchange } from './exchange/peer-exchange';
import { ChunkAssembler } from './chunk-assembler';
import { ActionName, actionNameOf, chunkAckFrame, errorForClient, multicastCopySize, multicastResultFrame, peerFrame, peerFrameHeader, readMulticastRequest, replyErrorFrame, errorFrame, FINAL_REPLY_TYPES, frameId, frameType, replyErrorFrames, sameBytes, SOURCE_OFFSET } from './frames';
import { RefusalAudit } from './refusal-audit';
import { SendBudget } from './rate-limit';
import { AuditEntry, AuditLog } from './registry/audit-log';
import { AuditKind } from './registry/entities';
import { PeerRegistry } from './registry/peer-registry';
import { createSecret, hashSecret } from './registry/token-store';
import { ANONYMOUS, SwitchboardSecurity } from './security';
import { BrokerStats } from './stats';

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

/** Bounds on per-connection bookkeeping, so a busy or hostile peer cannot grow the broker without limit. */
const MAX_PENDING_PER_CALLER = 10_000;
const MAX_TRACKED_CALLERS = 10_000;

/** Replies that end an observable (a file chunk stream, for the dashboard's active transfers). */
const STREAM_END_TYPES = new Set<number>([RpcTypes.ResponseActionObservableComplete, RpcTypes.ResponseActionObservableError, RpcTypes.Error]);

/** A Deepkit message built from a header `inspectFrame` already read, so Deepkit never parses the header again. */
class CheckedRpcMessage extends RpcMessage {
    constructor(header: FrameHeader, frame: Uint8Array) {
        super(header.id, header.composite, header.type, header.route, header.bodyOffset, header.size - header.bodyOffset, frame);
        if (header.peerId) this.peerId = header.peerId;
    }
}

/** What the broker remembers of a caller whose requests this connection's peer still has to answer. */
interface CallerRequests {
    /** Whether the caller decodes Switchboard's error classes. */
    typedErrors: boolean;
    /** Request id → when it was routed. */
    ids: Map<number, number>;
}

/**
 * One client connection to the broker, and the security gate for everything it sends.
 *
 * Deepkit's stock connection forwards peer frames unchecked and forgets peers on disconnect. This one:
 * - checks every frame whole before any Deepkit reader sees it (shared/frame-check.ts), reassembles chunked messages
 *   within bounds, rate-limits every frame, refuses the frame types only the broker writes, and closes a connection
 *   after `maxProtocolViolations`;
 * - refuses peer frames whose source is not this connection, and overwrites the source of replies with the truth;
 * - asks the security class before routing, and answers undeliverable requests at once (PeerNotFound/PeerOffline);
 * - introduces each caller to the receiver (CallerIdentity) before the caller's first frame, so the receiver knows
 *   the verified caller ID;
 * - lets a connection send replies only to callers whose requests it received, for those request ids;
 * - on close: releases its peer ID, fails the requests it never answered, and tells the peers it called.
 */
export class BrokerConnection extends RpcKernelConnection implements ExchangeEndpoint {
    readonly connectionId = connectionKey(this.id);
    protected override actionHandler = new ValidatingServerAction(this.stats, this.cache, this, this.controllers, this.injector, this.eventDispatcher, this.security, this.sessionState, this.logger);
    protected services!: BrokerServices;
    protected gate!: SwitchboardSecurity;
    protected budget!: SendBudget;
    /** Caller connection → the identity last introduced to this connection's peer. */
    protected introduced = new Map<string, FrameOrigin>();
    /** Caller connection → ids of its requests this connection has received and may still answer → when routed. */
    protected pendingFromCallers = new Map<string, CallerRequests>();
    /** Peers this connection sent requests to: they hear CallerGone when it closes. */
    protected calledPeers = new Set<string>();
    protected chunks!: ChunkAssembler;
    protected refusals = new RefusalAudit((kind, entry) => this.record(kind, entry));
    protected violations = 0;
    /** Set by the client's Hello frame: it decodes Switchboard's error classes. */
    typedErrors = false;
    protected cachedOrigin?: FrameOrigin;
    /** The ID this connection deregistered last: its callers' pending requests still fail when it closes. */
    protected deregisteredAs?: string;
    /**
     * The ID whose registration is on its way: a cluster exchange may hear of a newer holder (its directory watch)
     * after it counted this connection as the holder but before register() has returned here, and tells it then.
     */
    protected registering?: { peerId: string, replaced: boolean };

    /** Called by the kernel right after construction; Deepkit's constructor signature is fixed. */
    attachTo(services: BrokerServices, gate: SwitchboardSecurity): void {
        this.services = services;
        this.gate = gate;
        const { config } = services;
        this.budget = new SendBudget(config.messagesPerSecond, config.bytesPerSecond || 4 * config.maxPayloadBytes);
        this.chunks = new ChunkAssembler(services.config.maxPayloadBytes, services.config.maxPayloadBytes * 2);
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

    /**
     * Everything a client sends enters here, as one WebSocket message holding one or more whole frames. Each frame is
     * validated in full (header, route data, every length in its body) before any Deepkit reader sees it; Deepkit's
     * own stream reader is bypassed, since it trusts every size field it reads.
     */
    override feed(buffer: Uint8Array, bytes?: number): void {
        const end = bytes ?? buffer.byteLength;
        this.stats.increase('incomingBytes', end);
        let offset = 0;
        while (offset < end && !this.closed) {
            const size = declaredFrameSize(buffer, offset);
            if (size < MIN_FRAME_SIZE || size > end - offset) {
                // Without a believable size there is no next frame to find: the rest of this message is dropped.
                const problem = size < 0 ? `A frame needs at least ${MIN_FRAME_SIZE} bytes; ${end - offset} are left.` : `The frame's size field says ${size} bytes, but ${end - offset} are left.`;
                return this.violation(frameId(buffer, offset), new MalformedMessage(problem));
            }
            this.acceptFrame(buffer.subarray(offset, offset + size));
            offset += size;
        }
    }

    protected acceptFrame(frame: Uint8Array, reassembled = false): void {
        const header = inspectFrame(frame);
        if (typeof header === 'string') return this.violation(frameId(frame), new MalformedMessage(header));
        if (BROKER_ONLY_FRAMES.has(header.type)) {
            return this.violation(header.id, new AccessDenied(`Frame type ${header.type} is written by the broker only.`, 'broker-only-frame'), header.peerId);
        }
        if (header.route === Route.server) {
            // Route "server" answers calls the broker made to the client; the broker makes none.
            return this.violation(header.id, new MalformedMessage('The broker accepts route types client, sourceDest and peer only.'));
        }
        const limit = this.services.config.maxPayloadBytes;
        if (header.size > limit) return this.refuse(header.id, PayloadTooLarge.for(header.size, limit), { target: header.peerId || undefined });
        if (header.route === Route.sourceDest) return this.routeReply(header, frame);
        // A reassembled message was charged its bytes chunk by chunk.
        if (!this.budget.take(1, reassembled ? 0 : header.size)) return this.refuse(header.id, this.rateLimited(), { target: header.peerId || undefined });
        if (header.route === Route.peer) return this.routeRequest(header, frame);
        if (header.type === RpcTypes.Chunk) {
            if (reassembled) return this.violation(header.id, new MalformedMessage('A chunked message cannot contain chunks.'));
            return this.acceptChunk(header, frame);
        }
        if (header.type === SwitchboardFrame.Multicast) return this.multicast(header, frame);
        if (header.type === SwitchboardFrame.Hello) {
            this.typedErrors = this.gate.typedErrors = true;
            this.cachedOrigin = undefined;
            return;
        }
        // Acknowledgements of chunks the broker sends: Deepkit's reader keeps the waiting writers.
        if (header.type === RpcTypes.ChunkAck) return super.feed(frame);
        this.handleMessage(new CheckedRpcMessage(header, frame));
    }

    protected acceptChunk(header: FrameHeader, frame: Uint8Array): void {
        const outcome = this.chunks.add(header.id, frame, header.bodyOffset);
        if (outcome.kind === 'refused') {
            if (outcome.violation) return this.violation(header.id, outcome.error);
            return this.refuse(header.id, outcome.error, {});
        }
        this.writeFrame(chunkAckFrame(header.id));
        if (outcome.kind === 'complete') this.acceptFrame(outcome.frame, true);
    }

    override async onMessage(message: RpcMessage): Promise<void> {
        // Routed frames never come this way (acceptFrame routes them from their header); Deepkit's own routing of
        // them would bypass the gate.
        if (message.routeType === Route.peer || message.routeType === Route.sourceDest) return;
        return super.onMessage(message);
    }

    /** A request to another peer, routed from its header bytes: no body is decoded on this path. */
    protected routeRequest(header: FrameHeader, frame: Uint8Array): void {
        const { stats, exchange, registry } = this.services;
        const target = header.peerId;
        if (!sameBytes(frame, SOURCE_OFFSET, this.id)) {
            stats.callsDenied++;
            return this.violation(header.id, new AccessDenied('The source of a peer message must be your own connection id (as returned by the ClientId handshake).', 'forged-source'), target);
        }
        try {
            this.gate.assertMaySend(this.sessionState.getSession(), target);
        } catch (error) {
            stats.callsDenied++;
            return this.refuse(header.id, error as SwitchboardError, { target });
        }

        const routed = exchange.route(target, frame, this.origin());
        if (routed === 'busy') return this.receiverBusy(target);
        if (!routed) {
            const known = registry.get(target);
            // The exchange may know a cause other than the target's absence (ClusterUnavailable: the cluster's link).
            const error = exchange.refusal?.(target) ?? (known ? PeerOffline.for(target, known.lastSeen) : PeerNotFound.for(target));
            this.writeFrame(errorFrame(header.id, errorForClient(error, this.typedErrors)));
            stats.refused(error.code);
            // The first message of a call may be its type request; either way the caller tried to call.
            if (header.type === RpcTypes.Action || header.type === RpcTypes.ActionType) {
                stats.callsUndeliverable++;
                this.recordCall(target, header.type, frame, header.bodyOffset, error.code);
            }
            return;
        }

        stats.framesRouted++;
        stats.bytesRouted += frame.byteLength;
        if (this.calledPeers.size < MAX_TRACKED_CALLERS) this.calledPeers.add(target);
        if (header.type === RpcTypes.Action) {
            stats.callsRouted++;
            const action = this.recordCall(target, header.type, frame, header.bodyOffset);
            if (action.action === 'chunks' && action.controller === FilesApi.path) stats.transferStarted(this.connectionId, header.id, this.myPeerId ?? this.sessionName, target);
        } else if (header.type === RpcTypes.ActionObservableUnsubscribe || header.type === RpcTypes.ActionObservableDisconnect) {
            stats.transferEnded(this.connectionId, header.id);
        }
    }

    /**
     * One Action for many peers: each distinct target gets its own copy (message id `firstId + i`, i its first
     * mention), under the same checks as a single call (send policy per target, verified caller identity, reply
     * tracking, audit); the sender gets the outcome of each target at once.
     * Bounded before any work: every copy is charged to the sender's budget (one message and its bytes per distinct
     * target), so one frame costs at most a second's budget; a copy is built only for a target that is online.
     */
    protected multicast(header: FrameHeader, frame: Uint8Array): void {
        const request = readMulticastRequest(frame, header.bodyOffset);
        if (typeof request === 'string') return this.violation(header.id, new MalformedMessage(request));
        const { targets, firstId, body } = request;
        const firstMention = new Map<string, number>();
        let copyBytes = 0;
        for (let i = 0; i < targets.length; i++) {
            if (firstMention.has(targets[i])) continue;
            firstMention.set(targets[i], i);
            copyBytes += multicastCopySize(targets[i], body);
        }
        // The multicast frame itself paid for one message and its own bytes on arrival.
        if (!this.budget.take(Math.max(0, firstMention.size - 1), copyBytes)) {
            return this.refuse(header.id, this.rateLimited(`a multicast of ${firstMention.size} copies, ${copyBytes} bytes in all`), {});
        }
        const { stats, exchange, registry } = this.services;
        const session = this.sessionState.getSession();
        const origin = this.origin();
        const action = actionNameOf(body, 0);
        const outcomes: MulticastOutcome[] = [];
        for (let i = 0; i < targets.length; i++) {
            const target = targets[i];
            if (firstMention.get(target) !== i) {
                outcomes.push('duplicate');
                continue;
            }
            try {
                this.gate.assertMaySend(session, target);
            } catch (error) {
                stats.callsDenied++;
                this.refusals.record('denied', { target, reason: (error as SwitchboardError).code });
                outcomes.push('denied');
                continue;
            }
            // A copy is a header of its own and the one body, handed on side by side where the exchange can; it is
            // made only for a target that can take it: an unknown one costs a lookup, no bytes.
            const routed = exchange.lookup(target) && (exchange.routeParts
                ? exchange.routeParts(target, peerFrameHeader(firstId + i, this.id, target, RpcTypes.Action, body.byteLength), body, origin)
                : exchange.route(target, peerFrame(firstId + i, this.id, target, RpcTypes.Action, body), origin));
            if (!routed) {
                stats.callsUndeliverable++;
                outcomes.push(exchange.refusal?.(target) ? 'unavailable' : registry.get(target) ? 'offline' : 'not-found');
                continue;
            }
            if (routed === 'busy') {
                outcomes.push('busy');
                this.receiverBusy(target);
                continue;
            }
            outcomes.push(routed === 'forwarded' ? 'forwarded' : 'delivered');
            stats.callsRouted++;
            stats.framesRouted++;
            stats.bytesRouted += multicastCopySize(target, body);
            if (this.calledPeers.size < MAX_TRACKED_CALLERS) this.calledPeers.add(target);
            this.services.audit.recordCall({ peerId: this.myPeerId, session: this.sessionName, connectionId: this.connectionId, target, ...action });
        }
        this.writeFrame(multicastResultFrame(header.id, outcomes));
    }

    /** A reply to a request this connection's peer received. Replies are never rate limited: refusing one would lose a call the broker accepted. */
    protected routeReply(header: FrameHeader, frame: Uint8Array): void {
        const caller = connectionKey(frame.subarray(SOURCE_OFFSET + 16, SOURCE_OFFSET + 32));
        const pending = this.pendingFromCallers.get(caller)?.ids;
        const { stats } = this.services;
        if (!pending || !pending.has(header.id)) {
            // Also what a late reply looks like after its caller left, so it is dropped, not held against the
            // sender; but a flood of them is limited like any other frame.
            stats.refused('UNSOLICITED_REPLY');
            if (this.budget.take(1, 0)) this.refusals.record('denied', { reason: 'unsolicited-reply' });
            return;
        }
        const type = header.type;
        if (FINAL_REPLY_TYPES.has(type)) {
            stats.observeCallLatency(performance.now() - pending.get(header.id)!);
            pending.delete(header.id);
        }
        if (type === RpcTypes.Error) stats.callErrors++;
        if (STREAM_END_TYPES.has(type)) stats.transferEnded(caller, header.id);
        // Deepkit writes the id of the replying kernel connection here, not of the client; the truth is this one.
        frame.set(this.id, SOURCE_OFFSET);
        stats.framesRouted++;
        stats.bytesRouted += frame.byteLength;
        this.services.exchange.reply(caller, frame);
    }

    /** The audit trail's view of a call: names read from the body's bytes, not a decoded body (see AuditLog.recordCall). */
    protected recordCall(target: string, type: number, frame: Uint8Array, bodyOffset: number, reason?: string): ActionName {
        // Action and ActionType bodies both start with controller and method.
        const action = type === RpcTypes.Action || type === RpcTypes.ActionType ? actionNameOf(frame, bodyOffset) : {};
        this.services.audit.recordCall({ peerId: this.myPeerId, session: this.sessionName, connectionId: this.connectionId, target, ...action, reason });
        return action;
    }

    // ---- delivered to us by the exchange ----------------------------------------------------------------------

    deliverRequest(frame: Uint8Array, origin: FrameOrigin): boolean {
        return this.deliver(frame, frame.byteLength, origin, () => this.writeFrame(frame));
    }

    deliverRequestParts(header: Uint8Array, body: Uint8Array, origin: FrameOrigin): boolean {
        return this.deliver(header, header.byteLength + body.byteLength, origin, () => this.writeParts(header, body));
    }

    /** @param head the frame, or at least its header (id, route, type) @param size the whole frame's bytes */
    protected deliver(head: Uint8Array, size: number, origin: FrameOrigin, write: () => void): boolean {
        const caller = origin.connectionId;
        if (frameType(head) === SwitchboardFrame.CallerGone) {
            this.introduced.delete(caller);
            this.pendingFromCallers.delete(caller);
            write();
            return true;
        }
        const typedErrors = !!origin.typedErrors;
        const transport = this.transportConnection as ReasonedTransport;
        if (!this.closed && transport.hasRoomFor && !transport.hasRoomFor(size)) {
            // Refused to the sender, not written: a sender must not be able to get a receiver closed by filling its
            // buffer. A receiver that stays full is closed by the slow-consumer watch.
            const error = ReceiverBusy.for(this.myPeerId ?? '', size);
            const source = Buffer.from(caller, 'hex');
            this.services.exchange.reply(caller, replyErrorFrame(frameId(head), this.id, source, errorForClient(error, typedErrors)));
            return false;
        }
        const introduced = this.introduced.get(caller);
        if (introduced !== origin && this.myPeerId && !sameIdentity(introduced, origin)) {
            evictOldest(this.introduced, MAX_TRACKED_CALLERS);
            this.introduced.set(caller, origin);
            const source = head.subarray(SOURCE_OFFSET, SOURCE_OFFSET + 16);
            this.writeFrame(encodeCallerIdentity(this.myPeerId, source, { peerId: origin.peerId, session: origin.session, typedErrors }));
        }
        let pending = this.pendingFromCallers.get(caller);
        if (!pending) {
            evictOldest(this.pendingFromCallers, MAX_TRACKED_CALLERS);
            this.pendingFromCallers.set(caller, pending = { typedErrors, ids: new Map() });
        }
        evictOldest(pending.ids, MAX_PENDING_PER_CALLER);
        pending.ids.set(frameId(head), performance.now());
        write();
        return true;
    }

    deliverReply(frame: Uint8Array): void {
        this.writeFrame(frame);
    }

    disconnect(reason: string): void {
        this.closeFor(CloseCode.clusterLost, reason);
    }

    replaced(peerId: string): void {
        const registering = this.registering?.peerId === peerId ? this.registering : undefined;
        if (this.myPeerId !== peerId && !registering) return;
        if (registering) registering.replaced = true;
        this.record('takeover', { reason: 'replaced-by-owner' });
        this.myPeerId = undefined;
        // The code tells the SDK it was replaced, not cut off: it stops instead of taking the ID back.
        (this.transportConnection as ReasonedTransport).closeWith?.(CloseCode.replaced, 'replaced: another client took over this peer ID with its reclaim secret or token');
        this.close();
    }

    // ---- registration -----------------------------------------------------------------------------------------

    /**
     * Registers this connection as `peerId`. A live ID may be taken over only by its owner: the same token (token
     * mode) or the holder of its reclaim secret (open mode) — that is a reconnect racing the broker's notice of the
     * old connection's death. Anyone else gets PeerIdTaken; so does anyone but the owner within `peerIdGraceMs` of
     * the owner's connection being lost (a crash, a cut, a kick), while a clean deregister frees the ID at once.
     */
    async registerPeer(peerId: string, reclaimSecret?: string): Promise<Registration> {
        const { config, exchange, registry } = this.services;
        const session = this.sessionState.getSession();
        try {
            assertValidPeerId(peerId);
            if (this.myPeerId === peerId) return { peerId, tookOver: false };
            if (this.myPeerId) {
                throw new AccessDenied(`This connection is registered as "${this.myPeerId}" already; deregister it first.`, 'already-registered');
            }
            this.gate.assertMayRegister(session, peerId);
            const record = registry.get(peerId);
            const live = exchange.lookup(peerId);
            // A live ID's owner is kept by the exchange, where every broker of a cluster sees it (its broker may have
            // died); an offline ID's last owner by the registry.
            const claimed = exchange.ownerOf(peerId) ?? (record && { session: record.owner, reclaimSecretHash: record.reclaimSecretHash });
            const owner = config.auth === 'token'
                ? claimed?.session === this.sessionName
                : !!reclaimSecret && !!claimed?.reclaimSecretHash && sameSecret(hashSecret(reclaimSecret), claimed.reclaimSecretHash);
            const secret = config.auth === 'open' ? (owner && reclaimSecret ? reclaimSecret : createSecret('sbr_')) : undefined;
            const reclaimSecretHash = secret && hashSecret(secret);
            const claimant = { session: this.sessionName, reclaimSecretHash: reclaimSecret ? hashSecret(reclaimSecret) : undefined };
            const registering = this.registering = { peerId, replaced: false };
            try {
                await exchange.register(peerId, this.connectionId, { takeover: owner, owner: { session: this.sessionName, reclaimSecretHash }, claimant, graceMs: config.peerIdGraceMs });
            } finally {
                this.registering = undefined;
            }
            // Replaced before register() returned: the connection is closed as replaced, and holds nothing.
            if (registering.replaced) throw PeerReplaced.for(peerId);
            this.myPeerId = peerId;
            registry.setOwner(peerId, this.sessionName, reclaimSecretHash);
            const tookOver = !!live && owner;
            this.services.stats.registrations++;
            this.record(tookOver ? 'takeover' : 'register', {});
            return { peerId, reclaimSecret: secret, tookOver };
        } catch (error) {
            if (error instanceof SwitchboardError) {
                this.services.stats.refused(error.code);
                this.record('denied', { target: peerId, reason: error.code });
            }
            throw error;
        }
    }

    async deregisterPeer(): Promise<void> {
        const peerId = this.myPeerId;
        if (!peerId) throw new NotRegistered();
        this.myPeerId = undefined;
        this.deregisteredAs = peerId;
        // The calls it still owes end now, as on a disconnect: once the ID is gone no answer is awaited. A second
        // sweep after the exchange let go of the ID ends the calls delivered while it did.
        this.failUnanswered(peerId, 'deregistered before answering');
        try {
            await this.services.exchange.deregister(peerId, this.connectionId);
        } finally {
            this.failUnanswered(peerId, 'deregistered before answering');
        }
        this.record('deregister', { peerId });
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

    override close(): void {
        if (this.closed) return;
        // A peer that deregistered (Peer.close() does, then disconnects) may still owe answers to its callers.
        const peerId = this.myPeerId ?? this.deregisteredAs;
        super.close();
        const { exchange } = this.services;
        exchange.detach(this.connectionId);
        this.services.stats.transfersClosed(this.connectionId, peerId);

        if (peerId) {
            this.failUnanswered(peerId, 'disconnected before answering');
            this.record('disconnect', { peerId });
        }
        this.refusals.flush();
        this.chunks.clear();
        const origin: FrameOrigin = { ...this.origin(), peerId };
        for (const target of this.calledPeers) exchange.route(target, encodeCallerGone(target, this.id), origin);
        this.pendingFromCallers.clear();
        this.calledPeers.clear();
        this.introduced.clear();
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    /**
     * Ends every request this connection's peer received as `peerId` and never answered with PeerOffline, on this
     * broker or the caller's (HTTP callers too): they would otherwise wait for their own timeouts. A late answer is
     * then dropped as unsolicited.
     */
    protected failUnanswered(peerId: string, reason: string): void {
        const { exchange, stats } = this.services;
        const error = PeerOffline.for(peerId, new Date, reason);
        for (const [caller, { typedErrors, ids }] of this.pendingFromCallers) {
            if (!ids.size) continue;
            const destination = Buffer.from(caller, 'hex');
            for (const frames of replyErrorFrames(ids.keys(), this.id, destination, errorForClient(error, typedErrors))) exchange.reply(caller, frames);
            for (const id of ids.keys()) stats.transferEnded(caller, id);
            ids.clear();
        }
    }

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

    protected rateLimited(what?: string): RateLimited {
        const { messagesPerSecond } = this.services.config;
        const bytesPerSecond = this.budget.bytesPerSecond;
        const asked = what ? ` (${what})` : '';
        return new RateLimited(`Too much at once${asked}: this connection may make the broker send ${messagesPerSecond} messages and ${bytesPerSecond} bytes per second. Slow down, send to fewer peers or smaller bodies, and retry.`, messagesPerSecond);
    }

    /**
     * The target's connection had no room for a request of ours and answered its id with ReceiverBusy. Held against
     * this sender, which filled the target's buffer: a violation, not the target's disconnect.
     */
    protected receiverBusy(target: string): void {
        const { stats } = this.services;
        stats.refused('RECEIVER_BUSY');
        this.refusals.record('denied', { target, reason: 'RECEIVER_BUSY' });
        if (++this.violations >= this.services.config.maxProtocolViolations) {
            this.closeFor(CloseCode.protocolViolation, `${this.violations} protocol violations, the last: RECEIVER_BUSY`);
        }
    }

    /** Answers the frame with a typed error and audits the refusal (aggregated when they come in floods). */
    protected refuse(messageId: number, error: SwitchboardError, entry: AuditEntry): void {
        this.writeFrame(errorFrame(messageId, errorForClient(error, this.typedErrors)));
        this.services.stats.refused(error.code);
        this.refusals.record('denied', { ...entry, reason: error.code });
    }

    /** A refusal of something no honest client sends; after `maxProtocolViolations` the connection is closed. */
    protected violation(messageId: number, error: SwitchboardError, target?: string): void {
        this.refuse(messageId, error, { target: target || undefined });
        if (++this.violations >= this.services.config.maxProtocolViolations) {
            this.closeFor(CloseCode.protocolViolation, `${this.violations} protocol violations, the last: ${error.code}`);
        }
    }

    protected record(kind: AuditKind, entry: AuditEntry): void {
        this.services.audit.record(kind, {
            peerId: this.myPeerId,
            session: this.sessionName,
            connectionId: this.connectionId,
            ...entry,
        });
    }
}

function evictOldest<K>(collection: Set<K> | Map<K, unknown>, limit: number): void {
    if (collection.size < limit) return;
    const oldest = collection.keys().next();
    if (!oldest.done) collection.delete(oldest.value);
}

function sameIdentity(a: FrameOrigin | undefined, b: FrameOrigin): boolean {
    return !!a && a.peerId === b.peerId && a.session === b.session && !!a.typedErrors === !!b.typedErrors;
}

function sameSecret(a: string, b: string): boolean {
    return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
