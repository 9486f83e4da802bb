import { timingSafeEqual } from 'crypto';
import {
    BodyDecoder,
    readBinaryRpcMessage,
    rpcAction,
    rpcAuthenticate,
    rpcChunk,
    RpcKernelConnection,
    RpcMessage,
    RpcMessageBuilder,
    rpcPeerRegister,
    rpcResponseAuthenticate,
    RpcTypes,
} from '@deepkit/rpc';
import { getBSONDeserializer } from '@deepkit/bson';
import { AccessDenied, MalformedMessage, NotRegistered, PayloadTooLarge, PeerNotFound, PeerOffline, RateLimited, SwitchboardError } from '../shared/errors';
import { assertValidPeerId } from '../shared/peer-id';
import { ValidatingServerAction } from '../shared/validation';
import { Registration } from '../shared/broker-api';
import { FilesApi } from '../shared/files-api';
import { connectionKey, encodeCallerGone, encodeCallerIdentity, Route, SwitchboardFrame } from '../shared/wire';
import { BrokerConfig } from './config';
import { ExchangeEndpoint, FrameOrigin, PeerExchange } from './exchange/peer-exchange';
import { errorFrame, FINAL_REPLY_TYPES, frameId, frameSize, frameType, replyErrorFrame, sameBytes, SOURCE_OFFSET } from './frames';
import { TokenBucket } from './rate-limit';
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

/** Bounds on per-connection bookkeeping, so a busy or hostile peer cannot grow the broker without limit. */
const MAX_PENDING_PER_CALLER = 10_000;
const MAX_TRACKED_CALLERS = 10_000;

/** Replies that end an observable (a file chunk stream, for the dashboard's active transfers). */
const STREAM_END_TYPES = new Set<number>([RpcTypes.ResponseActionObservableComplete, RpcTypes.ResponseActionObservableError, RpcTypes.Error]);

const readAction = getBSONDeserializer<rpcAction>();
const readChunk = getBSONDeserializer<rpcChunk>();

/**
 * One client connection to the broker, and the security gate for everything it sends.
 *
 * Deepkit's stock connection forwards peer frames unchecked and forgets peers on disconnect. This one:
 * - refuses peer frames whose source is not this connection, and overwrites the source of replies with the truth;
 * - asks the security class before routing, and answers undeliverable requests at once (PeerNotFound/PeerOffline);
 * - introduces each caller to the receiver (CallerIdentity) before the caller's first frame, so the receiver knows
 *   the verified caller ID;
 * - lets a connection send replies only to callers whose requests it received, for those request ids;
 * - on close: releases its peer ID, fails the requests it never answered, and tells the peers it called.
 */
export class BrokerConnection extends RpcKernelConnection implements ExchangeEndpoint {
    readonly connectionId = connectionKey(this.id);
    protected actionHandler = new ValidatingServerAction(this.stats, this.cache, this, this.controllers, this.injector, this.eventDispatcher, this.security, this.sessionState, this.logger);
    protected services!: BrokerServices;
    protected gate!: SwitchboardSecurity;
    protected bucket!: TokenBucket;
    /** Caller connection → identity last introduced to this connection's peer. */
    protected introduced = new Map<string, string>();
    /** Caller connection → ids of its requests this connection has received and may still answer → when routed. */
    protected pendingFromCallers = new Map<string, Map<number, number>>();
    /** Peers this connection sent requests to: they hear CallerGone when it closes. */
    protected calledPeers = new Set<string>();

    /** Called by the kernel right after construction; Deepkit's constructor signature is fixed. */
    attachTo(services: BrokerServices, gate: SwitchboardSecurity): void {
        this.services = services;
        this.gate = gate;
        this.bucket = new TokenBucket(services.config.messagesPerSecond);
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

    feed(buffer: Uint8Array, bytes?: number): void {
        const size = bytes ?? buffer.byteLength;
        // The transport delivers whole frames. A size field that disagrees would stall Deepkit's stream reader.
        if (frameSize(buffer) !== size || size < 11) {
            if (size >= 9) this.writeFrame(errorFrame(frameId(buffer), new MalformedMessage(`Malformed frame: header says ${frameSize(buffer)} bytes, got ${size}.`)));
            this.services.stats.refused('MALFORMED_MESSAGE');
            return;
        }
        const limit = this.services.config.maxPayloadBytes;
        if (size > limit) return this.refuseFrame(buffer, PayloadTooLarge.for(size, limit));
        if (frameType(buffer) === RpcTypes.Chunk) {
            // Deepkit reassembles chunked messages in memory: refuse an oversized one at its first chunk.
            const chunk = readBinaryRpcMessage(buffer).decodeBody(readChunk as BodyDecoder<rpcChunk>);
            if (chunk.total > limit) return this.refuseFrame(buffer, PayloadTooLarge.for(chunk.total, limit));
        }
        super.feed(buffer, bytes);
    }

    handleMessage(message: RpcMessage): void {
        // Requests count against the rate; replies do not, since refusing a reply would lose an accepted call.
        if ((message.routeType === Route.peer || message.routeType === Route.client)
            && !this.bucket.take()) {
            return this.deny(message.id, RateLimited.for(this.services.config.messagesPerSecond), {});
        }
        super.handleMessage(message);
    }

    async onMessage(message: RpcMessage): Promise<void> {
        if (message.routeType === Route.peer) return this.routeRequest(message);
        if (message.routeType === Route.sourceDest) return this.routeReply(message);
        return super.onMessage(message);
    }

    protected routeRequest(message: RpcMessage): void {
        const { stats, exchange, registry } = this.services;
        const frame = message.getBuffer();
        const target = message.getPeerId();
        if (!sameBytes(frame, SOURCE_OFFSET, this.id)) {
            stats.callsDenied++;
            return this.deny(message.id, new AccessDenied('The source of a peer message must be your own connection id (as returned by the ClientId handshake).', 'forged-source'), { target });
        }
        try {
            this.gate.assertMaySend(this.sessionState.getSession(), target);
        } catch (error) {
            stats.callsDenied++;
            return this.deny(message.id, error as SwitchboardError, { target });
        }

        const origin: FrameOrigin = { connectionId: this.connectionId, peerId: this.myPeerId, session: this.sessionName };
        if (!exchange.route(target, frame, origin)) {
            const known = registry.get(target);
            const error = known ? PeerOffline.for(target, known.lastSeen) : PeerNotFound.for(target);
            this.writeFrame(errorFrame(message.id, error));
            stats.refused(error.code);
            // The first message of a call may be its type request; either way the caller tried to call.
            if (message.type === RpcTypes.Action || message.type === RpcTypes.ActionType) {
                stats.callsUndeliverable++;
                this.record('call', { target, ...this.actionOf(message), reason: error.code });
            }
            return;
        }

        stats.framesRouted++;
        stats.bytesRouted += frame.byteLength;
        if (this.calledPeers.size < MAX_TRACKED_CALLERS) this.calledPeers.add(target);
        if (message.type === RpcTypes.Action) {
            stats.callsRouted++;
            const action = this.actionOf(message);
            if (action.controller === FilesApi.path && action.action === 'chunks') stats.transferStarted(this.connectionId, message.id, this.myPeerId ?? this.sessionName, target);
            this.record('call', { target, ...action });
        } else if (message.type === RpcTypes.ActionObservableUnsubscribe || message.type === RpcTypes.ActionObservableDisconnect) {
            stats.transferEnded(this.connectionId, message.id);
        }
    }

    protected routeReply(message: RpcMessage): void {
        const frame = message.getBuffer();
        const destination = message.getDestination();
        const caller = connectionKey(destination);
        const pending = this.pendingFromCallers.get(caller);
        if (!pending || !pending.has(message.id)) {
            this.services.stats.refused('UNSOLICITED_REPLY');
            // Replies are not rate limited; a flood of forged ones must not become a flood of audit rows.
            if (this.bucket.take()) this.record('denied', { reason: 'unsolicited-reply' });
            return;
        }
        if (FINAL_REPLY_TYPES.has(message.type)) {
            this.services.stats.observeCallLatency(performance.now() - pending.get(message.id)!);
            pending.delete(message.id);
        }
        if (message.type === RpcTypes.Error) this.services.stats.callErrors++;
        if (STREAM_END_TYPES.has(message.type)) this.services.stats.transferEnded(caller, message.id);
        // Deepkit writes the id of the replying kernel connection here, not of the client; the truth is this one.
        frame.set(this.id, SOURCE_OFFSET);
        this.services.stats.framesRouted++;
        this.services.stats.bytesRouted += frame.byteLength;
        this.services.exchange.reply(caller, frame);
    }

    // ---- delivered to us by the exchange ----------------------------------------------------------------------

    deliverRequest(frame: Uint8Array, origin: FrameOrigin): void {
        const caller = origin.connectionId;
        if (frameType(frame) === SwitchboardFrame.CallerGone) {
            this.introduced.delete(caller);
            this.pendingFromCallers.delete(caller);
            this.writeFrame(frame);
            return;
        }
        const identity = (origin.peerId ?? '') + '\n' + origin.session;
        if (this.introduced.get(caller) !== identity && this.myPeerId) {
            evictOldest(this.introduced, MAX_TRACKED_CALLERS);
            this.introduced.set(caller, identity);
            const source = frame.subarray(SOURCE_OFFSET, SOURCE_OFFSET + 16);
            this.writeFrame(encodeCallerIdentity(this.myPeerId, source, { peerId: origin.peerId, session: origin.session }));
        }
        let pending = this.pendingFromCallers.get(caller);
        if (!pending) {
            evictOldest(this.pendingFromCallers, MAX_TRACKED_CALLERS);
            this.pendingFromCallers.set(caller, pending = new Map());
        }
        evictOldest(pending, MAX_PENDING_PER_CALLER);
        pending.set(frameId(frame), performance.now());
        this.writeFrame(frame);
    }

    deliverReply(frame: Uint8Array): void {
        this.writeFrame(frame);
    }

    replaced(peerId: string): void {
        if (this.myPeerId !== peerId) return;
        this.record('takeover', { reason: 'replaced-by-owner' });
        this.myPeerId = undefined;
        this.close();
    }

    // ---- registration -----------------------------------------------------------------------------------------

    /**
     * Registers this connection as `peerId`. A live ID may be taken over only by its owner: the same token (token
     * mode) or the holder of its reclaim secret (open mode) — that is a reconnect racing the broker's notice of the
     * old connection's death. Anyone else gets PeerIdTaken.
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
            const owner = config.auth === 'token'
                ? record?.owner === this.sessionName
                : !!reclaimSecret && !!record?.reclaimSecretHash && sameSecret(hashSecret(reclaimSecret), record.reclaimSecretHash);
            await exchange.register(peerId, this.connectionId, { takeover: owner });
            this.myPeerId = peerId;
            const secret = config.auth === 'open' ? (owner && reclaimSecret ? reclaimSecret : createSecret('sbr_')) : undefined;
            registry.setOwner(peerId, this.sessionName, secret && hashSecret(secret));
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
        await this.services.exchange.deregister(peerId, this.connectionId);
        this.record('deregister', { peerId });
    }

    /** Deepkit's own `registerAsPeer(id)` message, so stock clients get the same rules. */
    protected async registerAsPeer(message: RpcMessage, response: RpcMessageBuilder): Promise<void> {
        try {
            await this.registerPeer(message.parseBody<rpcPeerRegister>().id);
            response.ack();
        } catch (error) {
            response.error(this.gate.transformError(error as Error));
        }
    }

    protected async deregisterAsPeer(message: RpcMessage, response: RpcMessageBuilder): Promise<void> {
        try {
            await this.deregisterPeer();
            response.ack();
        } catch (error) {
            response.error(this.gate.transformError(error as Error));
        }
    }

    protected async authenticate(message: RpcMessage, response: RpcMessageBuilder): Promise<void> {
        try {
            const session = await this.gate.authenticate(message.parseBody<rpcAuthenticate>().token);
            this.sessionState.setSession(session);
            response.reply<rpcResponseAuthenticate>(RpcTypes.AuthenticateResponse, { username: session.username });
        } catch (error) {
            this.services.stats.refused('AUTHENTICATION_FAILED');
            this.record('auth-failed', { reason: 'AUTHENTICATION_FAILED' });
            response.error(this.gate.transformError(error as Error));
        }
    }

    // ---- closing ----------------------------------------------------------------------------------------------

    close(): void {
        if (this.closed) return;
        const peerId = this.myPeerId;
        super.close();
        const { exchange } = this.services;
        exchange.detach(this.connectionId);
        this.services.stats.transfersClosed(this.connectionId, peerId);

        // Requests this peer received and never answered would otherwise wait forever on the caller's side.
        if (peerId) {
            const lastSeen = new Date;
            for (const [caller, ids] of this.pendingFromCallers) {
                const destination = Buffer.from(caller, 'hex');
                for (const id of ids.keys()) {
                    exchange.reply(caller, replyErrorFrame(id, this.id, destination, PeerOffline.for(peerId, lastSeen, 'disconnected before answering')));
                }
            }
            this.record('disconnect', { peerId });
        }
        const origin: FrameOrigin = { connectionId: this.connectionId, peerId, session: this.sessionName };
        for (const target of this.calledPeers) exchange.route(target, encodeCallerGone(target, this.id), origin);
        this.pendingFromCallers.clear();
        this.calledPeers.clear();
        this.introduced.clear();
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    protected writeFrame(frame: Uint8Array): void {
        if (this.closed) return;
        this.transportConnection.writeBinary!(frame);
    }

    protected refuseFrame(frame: Uint8Array, error: SwitchboardError): void {
        this.deny(frameId(frame), error, {});
    }

    protected deny(messageId: number, error: SwitchboardError, entry: AuditEntry): void {
        this.writeFrame(errorFrame(messageId, error));
        this.services.stats.refused(error.code);
        this.record('denied', { ...entry, reason: error.code });
    }

    protected actionOf(message: RpcMessage): { controller?: string, action?: string } {
        try {
            const body = message.decodeBody(readAction as BodyDecoder<rpcAction>);
            return { controller: body.controller, action: body.method };
        } catch {
            return {};
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

function sameSecret(a: string, b: string): boolean {
    return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
