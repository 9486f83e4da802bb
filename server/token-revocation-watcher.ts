import { eventDispatcher } from '@deepkit/event';
import { onServerMainBootstrap, onServerMainShutdown } from '@deepkit/framework';
import { LoggerInterface } from '@deepkit/logger';
import { RpcKernel, RpcKernelBaseConnection } from '@deepkit/rpc';
import { BrokerConfig } from './config';
import { BrokerConnection, CloseCode } from './connection';
import { TokenStore } from './registry/token-store';
import { PeerSession } from './security';

/**
 * Ends the live connections whose token was revoked. `token:revoke` runs in another process and only writes the
 * token table, so the broker looks: every `tokenRevocationCheckMs`, one query for the tokens its live connections
 * authenticated with; a connection whose token is revoked (or gone) is closed with a reason the client sees.
 */
export class TokenRevocationWatcher {
    protected connections = new Set<BrokerConnection>();
    protected timer?: ReturnType<typeof setInterval>;
    protected stopFollowing?: () => void;
    protected checking = false;

    constructor(
        protected config: BrokerConfig,
        protected kernel: RpcKernel,
        protected tokens: TokenStore,
        protected logger: LoggerInterface,
    ) {
    }

    @eventDispatcher.listen(onServerMainBootstrap)
    start(): void {
        if (this.timer) return;
        this.stopFollowing = this.kernel.onConnection((connection: RpcKernelBaseConnection) => {
            if (!(connection instanceof BrokerConnection)) return;
            this.connections.add(connection);
            void connection.onClose.then(() => this.connections.delete(connection));
        });
        this.timer = setInterval(() => void this.check(), this.config.tokenRevocationCheckMs);
        this.timer.unref?.();
    }

    @eventDispatcher.listen(onServerMainShutdown)
    stop(): void {
        clearInterval(this.timer);
        this.timer = undefined;
        this.stopFollowing?.();
        this.connections.clear();
    }

    /** Closes the connections whose token is no longer live. */
    async check(): Promise<void> {
        if (this.checking) return;
        this.checking = true;
        try {
            const byToken = new Map<number, BrokerConnection[]>();
            for (const connection of this.connections) {
                const session = connection.sessionState.getSession();
                if (!(session instanceof PeerSession) || !session.grant) continue;
                const sharing = byToken.get(session.grant.id);
                if (sharing) sharing.push(connection);
                else byToken.set(session.grant.id, [connection]);
            }
            if (!byToken.size) return;
            const live = await this.tokens.liveIds([...byToken.keys()]);
            for (const [id, connections] of byToken) {
                if (live.has(id)) continue;
                for (const connection of connections) connection.closeFor(CloseCode.tokenRevoked, 'token revoked');
            }
        } catch (error) {
            this.logger.error('Could not check for revoked tokens', error);
        } finally {
            this.checking = false;
        }
    }
}
