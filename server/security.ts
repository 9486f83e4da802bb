import { RpcControllerAccess, RpcKernelSecurity, Session } from '@deepkit/rpc';
import { ValidationError } from '@deepkit/type';
import { LoggerInterface } from '@deepkit/logger';
import { AccessDenied, AuthenticationFailed, SwitchboardError, Timeout, matchesPeerPattern, BrokerApi } from '@switchboard/protocol';
import { boundedValidationError } from '@switchboard/protocol/internal';
import { BrokerConfig } from './config';
import { PeerTokenStore } from './registry/token-store';
import { errorForClient, withoutStack } from './frames';
import { PeerToken } from './registry/entities';
import { AuditLog } from './registry/audit-log';
import { RefusalAudit } from './refusal-audit';
import { BrokerStats } from './stats';

export const ANONYMOUS = 'anonymous';

/**
 * Who is asking, as the security class records it in the audit trail. The connection hands it over when it starts,
 * so security never sees (or casts) the connection itself.
 */
export interface ConnectionIdentity {
    readonly connectionId: string;
    /** The registered peer ID, once there is one. */
    readonly peerId: string | undefined;
    /** The session's name: a token's name, or `anonymous`. */
    readonly sessionName: string;
}

/** A connection's session: anonymous, or backed by a peer token and its grant. */
export class PeerSession extends Session {
    constructor(username: string, token: unknown, public readonly grant?: PeerToken) {
        super(username, token);
    }
}

/** Broker actions an unauthenticated connection may use in token mode (`register` explains its own refusal). */
const PUBLIC_ACTIONS = new Set(['whoami', 'register']);
/** Broker actions that watch the whole broker: admin tokens only in token mode. */
const ADMIN_ACTIONS = new Set(['dashboard']);

/**
 * Who may register which ID, who may send to whom, who may use the broker's own controllers.
 *
 * Open mode (development): anyone may register any valid free ID and send anywhere. Token mode: a connection must
 * authenticate with a token; the token's grant lists the IDs it may register and its send policy.
 *
 * The `can…` methods are synchronous so the routing hot path never waits; Deepkit's async hooks delegate to them.
 */
export class SwitchboardSecurity extends RpcKernelSecurity {
    protected refusals: RefusalAudit;
    /** The connection this instance guards (one security instance per connection, scope `rpc`). */
    protected identity?: ConnectionIdentity;

    /** @internal Deepkit's DI builds one per connection. */
    constructor(
        protected config: BrokerConfig,
        protected tokens: PeerTokenStore,
        protected logger: LoggerInterface,
        audit: AuditLog,
        protected stats: BrokerStats,
    ) {
        super();
        // One security instance per connection (rpc scope), so the refusals are counted per connection.
        this.refusals = new RefusalAudit((kind, entry) => audit.record(kind, entry));
    }

    /** Called by the connection as it starts: refusals are recorded under this identity. */
    identify(identity: ConnectionIdentity): void {
        this.identity = identity;
    }

    override async authenticate(token: unknown): Promise<PeerSession> {
        if (typeof token !== 'string' || token.length > 200) throw new AuthenticationFailed('The token must be a string as printed by `token:create`.');
        let grant: PeerToken | undefined;
        try {
            grant = await this.tokens.verify(token);
        } catch (error) {
            // A cluster's tokens live on NATS: while it is away nobody can be checked, which is not a bad token.
            this.logger.warn('Could not check a token', (error as Error).message);
            throw new Timeout('The broker cannot reach its token store right now (in a cluster: NATS). Retry, or connect to another broker.', 0, 'authentication');
        }
        if (!grant) throw new AuthenticationFailed();
        return new PeerSession(grant.name, token, grant);
    }

    /** @throws AccessDenied with the reason, so the refusal explains itself. */
    assertMayRegister(session: Session, peerId: string): void {
        if (this.config.auth === 'open') return;
        const grant = grantOf(session);
        if (!grant) throw new AccessDenied('Token mode: authenticate with a peer token before registering.', 'not-authenticated');
        if (!grant.peerIds.some(pattern => matchesPeerPattern(pattern, peerId))) {
            throw new AccessDenied(`Token "${grant.name}" may not register "${peerId}" (it may register: ${grant.peerIds.join(', ') || 'nothing'}).`, 'id-not-granted');
        }
    }

    /** Whether the session holds a grant for the ID: enough to take over its own stale registration. */
    ownsByGrant(session: Session, peerId: string): boolean {
        const grant = grantOf(session);
        return !!grant && grant.peerIds.some(pattern => matchesPeerPattern(pattern, peerId));
    }

    /** @throws AccessDenied */
    assertMaySend(session: Session, targetPeerId: string): void {
        if (this.config.auth === 'open' && !grantOf(session)) return;
        const grant = grantOf(session);
        if (!grant) throw new AccessDenied('Token mode: authenticate with a peer token before calling peers.', 'not-authenticated');
        if (grant.denyTargets.some(pattern => matchesPeerPattern(pattern, targetPeerId))) {
            throw new AccessDenied(`Token "${grant.name}" may not send to "${targetPeerId}" (deny list).`, 'send-denied');
        }
        if (grant.allowTargets.length && !grant.allowTargets.some(pattern => matchesPeerPattern(pattern, targetPeerId))) {
            throw new AccessDenied(`Token "${grant.name}" may only send to: ${grant.allowTargets.join(', ')}.`, 'send-not-allowed');
        }
    }

    isAdmin(session: Session): boolean {
        return this.config.auth === 'open' || !!grantOf(session)?.admin;
    }

    override async isAllowedToRegisterAsPeer(session: Session, peerId: string): Promise<boolean> {
        return permits(() => this.assertMayRegister(session, peerId));
    }

    override async isAllowedToSendToPeer(session: Session, peerId: string): Promise<boolean> {
        return permits(() => this.assertMaySend(session, peerId));
    }

    /**
     * Refusals are thrown rather than returned (Deepkit would turn `false` into an untyped "Access denied" error) and
     * audited, at most one row a second per reason for a connection.
     */
    override async hasControllerAccess(session: Session, access: RpcControllerAccess): Promise<boolean> {
        if (this.config.auth === 'open') return true;
        const brokerApi = access.controllerName === BrokerApi.path;
        if (brokerApi && PUBLIC_ACTIONS.has(access.actionName)) return true;
        if (!grantOf(session)) {
            throw this.refuse(access, new AccessDenied(`Token mode: authenticate with a peer token to use ${access.actionName}.`, 'not-authenticated'));
        }
        if (brokerApi && ADMIN_ACTIONS.has(access.actionName) && !this.isAdmin(session)) {
            throw this.refuse(access, new AccessDenied(`The ${access.actionName} needs an admin token (\`token:create <name> --admin\`) in token mode.`, 'admin-only'));
        }
        return true;
    }

    protected refuse(access: RpcControllerAccess, error: AccessDenied): AccessDenied {
        const identity = this.identity;
        this.stats.refused(error.code);
        this.refusals.record('denied', {
            peerId: identity?.peerId, session: identity?.sessionName, connectionId: identity?.connectionId,
            controller: access.controllerName, action: access.actionName, reason: error.reason,
        });
        return withoutStack(error);
    }

    /**
     * Clients get the error's code and message, never a stack trace or an internal error's text; the class only if
     * they said they decode ours (one security instance per connection, so the connection sets this).
     */
    typedErrors = false;

    override transformError(error: Error): Error {
        if (error instanceof SwitchboardError) return errorForClient(error, this.typedErrors);
        // An invalid megabyte argument must not come back as a megabyte error.
        if (error instanceof ValidationError) return boundedValidationError(error);
        this.logger.error('Broker action failed', error);
        const hidden = new Error('Internal broker error. The operator can find details in the broker log.');
        hidden.stack = '';
        return hidden;
    }
}

function grantOf(session: Session): PeerToken | undefined {
    return session instanceof PeerSession ? session.grant : undefined;
}

function permits(check: () => void): boolean {
    try {
        check();
        return true;
    } catch {
        return false;
    }
}
