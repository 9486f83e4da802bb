import { Logger } from '@deepkit/logger';
import { Session } from '@deepkit/rpc';
import { deserialize, validate } from '@deepkit/type';
import { AccessDenied, AuthenticationFailed, MalformedMessage, PeerNotFound, PeerOffline, RateLimited, SwitchboardError, HTTP_SESSION_PREFIX, HttpActionDescription, assertValidPeerId } from '@switchboard/protocol';
import { BrokerConfig } from '../config';
import { PeerExchange } from '../exchange/peer-exchange';
import { TokenBucket } from '../rate-limit';
import { AuditLog } from '../registry/audit-log';
import { PeerRegistry } from '../registry/peer-registry';
import { PeerTokenStore } from '../registry/token-store';
import { ANONYMOUS, SwitchboardSecurity } from '../security';
import { BrokerStats } from '../stats';
import { HttpCaller, MAX_PENDING_HTTP_CALLS } from './http-caller';

/** Callers (one per session) a broker keeps at most; past it the least recently used one is closed. */
const MAX_CALLERS = 1_000;
/** A caller unused for this long is closed (its targets drop their state for it). */
const IDLE_MS = 60_000;

/** Who is calling over HTTP, once authenticated: the session the gate judges, and its caller on the exchange. */
export interface HttpIdentity {
    session: Session;
    name: string;
}

/**
 * Actions over HTTP, broker side: authenticates an HTTP client as a WebSocket client would be (bearer token in
 * token mode), applies the same send policy, rate limit, payload limit and audit, and calls the target peer's HTTP
 * gateway through the exchange — so the target may be on this broker or on any other of the cluster.
 */
export class HttpActionGateway {
    protected security: SwitchboardSecurity;
    protected callers = new Map<string, { caller: HttpCaller, bucket: TokenBucket }>();
    protected sweeper?: ReturnType<typeof setInterval>;

    constructor(
        protected config: BrokerConfig,
        protected exchange: PeerExchange,
        protected registry: PeerRegistry,
        protected audit: AuditLog,
        protected stats: BrokerStats,
        tokens: PeerTokenStore,
        logger: Logger,
    ) {
        this.security = new SwitchboardSecurity(config, tokens, logger.scoped('http-actions'), audit, stats);
    }

    /**
     * The session of an `Authorization: Bearer <token>` header. Token mode needs one (401 without); in open mode a
     * token is optional and, when given, its send policy applies as it would on a WebSocket.
     */
    async authenticate(authorization: string | undefined): Promise<HttpIdentity> {
        const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
        if (!token) {
            if (this.config.auth === 'token') {
                this.refuse('auth-failed', ANONYMOUS, {}, 'AUTHENTICATION_FAILED');
                throw new AccessDenied('Token mode: send a peer token as `Authorization: Bearer <token>`.', 'not-authenticated');
            }
            return { session: new Session(ANONYMOUS, undefined), name: ANONYMOUS };
        }
        try {
            const session = await this.security.authenticate(token);
            return { session, name: session.username };
        } catch (error) {
            if (error instanceof AuthenticationFailed) this.refuse('auth-failed', ANONYMOUS, {}, error.code);
            throw error;
        }
    }

    /** Calls `controller.action` on `target` with a JSON array of arguments; resolves with the result as JSON. */
    async call(identity: HttpIdentity, target: string, controller: string, action: string, argumentsJson: string, timeoutMs: number): Promise<string> {
        const body = await this.request(identity, target, { controller, action }, caller => caller.call(target, 'call', [controller, action, argumentsJson], timeoutMs));
        if (typeof body.v !== 'string') throw new MalformedMessage(`Peer "${target}" answered its HTTP gateway call with something other than JSON text.`);
        return body.v;
    }

    /** What `target` serves over HTTP (checked: the answer comes from a peer). */
    async list(identity: HttpIdentity, target: string, timeoutMs: number): Promise<HttpActionDescription[]> {
        const body = await this.request(identity, target, { controller: 'switchboard/http-actions', action: 'list' }, caller => caller.call(target, 'list', [], timeoutMs));
        let listed: HttpActionDescription[];
        try {
            listed = deserialize<HttpActionDescription[]>(body.v);
        } catch {
            listed = [];
        }
        if (!Array.isArray(body.v) || validate<HttpActionDescription[]>(listed).length) throw new MalformedMessage(`Peer "${target}" answered the list of its HTTP actions with an invalid document.`);
        return listed;
    }

    /** Closes every caller: their targets drop the state they keep for them. */
    close(): void {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
        for (const { caller } of this.callers.values()) caller.close();
        this.callers.clear();
    }

    protected async request(identity: HttpIdentity, target: string, name: { controller: string, action: string }, send: (caller: HttpCaller) => Promise<Record<string, unknown>> | false): Promise<Record<string, unknown>> {
        const session = HTTP_SESSION_PREFIX + identity.name;
        const { caller, bucket } = this.callerFor(session);
        const entry = { session, connectionId: caller.connectionId, target, ...name };
        try {
            assertValidPeerId(target);
            this.security.assertMaySend(identity.session, target);
        } catch (error) {
            this.stats.callsDenied++;
            this.refuse('denied', session, entry, (error as SwitchboardError).code, (error as AccessDenied).reason);
            throw error;
        }
        if (!bucket.take() || caller.pendingCalls >= MAX_PENDING_HTTP_CALLS) {
            this.refuse('denied', session, entry, 'RATE_LIMITED');
            throw RateLimited.for(this.config.messagesPerSecond);
        }
        const reply = send(caller);
        if (!reply) {
            const known = this.registry.get(target);
            const error = known ? PeerOffline.for(target, known.lastSeen) : PeerNotFound.for(target);
            this.stats.callsUndeliverable++;
            this.stats.refused(error.code);
            this.audit.recordCall({ ...entry, reason: error.code });
            throw error;
        }
        this.stats.callsRouted++;
        try {
            const body = await reply;
            this.audit.recordCall(entry);
            return body;
        } catch (error) {
            this.audit.recordCall({ ...entry, reason: error instanceof SwitchboardError ? error.code : 'ACTION_FAILED' });
            throw error;
        }
    }

    protected callerFor(session: string): { caller: HttpCaller, bucket: TokenBucket } {
        let entry = this.callers.get(session);
        if (entry) {
            // Most recently used last, so eviction takes the least recently used.
            this.callers.delete(session);
        } else {
            if (this.callers.size >= MAX_CALLERS) {
                const [oldest, { caller }] = this.callers.entries().next().value!;
                this.callers.delete(oldest);
                caller.close();
            }
            entry = { caller: new HttpCaller(this.exchange, session), bucket: new TokenBucket(this.config.messagesPerSecond) };
            this.startSweeper();
        }
        this.callers.set(session, entry);
        return entry;
    }

    protected startSweeper(): void {
        if (this.sweeper) return;
        this.sweeper = setInterval(() => {
            const now = Date.now();
            for (const [session, { caller }] of this.callers) {
                if (now - caller.lastUsed < IDLE_MS || caller.pendingCalls) continue;
                this.callers.delete(session);
                caller.close();
            }
        }, IDLE_MS);
        this.sweeper.unref?.();
    }

    protected refuse(kind: 'denied' | 'auth-failed', session: string, entry: { target?: string, controller?: string, action?: string, connectionId?: string }, code: string, reason?: string): void {
        this.stats.refused(code);
        this.audit.record(kind, { ...entry, session, reason: reason || code });
    }
}
