import { eventDispatcher } from '@deepkit/event';
import { onServerMainBootstrap, onServerMainShutdown } from '@deepkit/framework';
import { LoggerInterface } from '@deepkit/logger';
import { RpcKernel, RpcKernelBaseConnection } from '@deepkit/rpc';
import { BrokerConfig } from './config';
import { BrokerConnection, CloseCode } from './connection';
import { PeerTokenStore } from './registry/token-store';
import { PeerSession } from './security';

/**
 * Ends the live connections whose token was revoked. `token:revoke` runs in another process and only writes the
 * token store, so the broker looks: every `tokenRevocationCheckMs`, one query for the tokens its live connections
 * authenticated with; a connection whose token is revoked (or gone) is closed with a reason the client sees. A store
 * that can tell (the cluster's KV bucket, through a watch) reports revocations as they happen, on every broker; the
 * poll stays as the net for what happened while NATS was away.
 */
export class TokenRevocationWatcher {
    protected connections = new Set<BrokerConnection>();
    protected timer?: ReturnType<typeof setInterval>;
    protected stopFollowing?: () => void;
    protected checking = false;
    protected stopRevocations?: () => void;

    constructor(
        protected config: BrokerConfig,
        protected kernel: RpcKernel,
        protected tokens: PeerTokenStore,
        protected logger: LoggerInterface,
    ) {
    }

    @eventDispatcher.listen(onServerMainBootstrap)
    async start(): Promise<void> {
        if (this.timer) return;
        this.stopFollowing = this.kernel.onConnection((connection: RpcKernelBaseConnection) => {
            if (!(connection instanceof BrokerConnection)) return;
            this.connections.add(connection);
            void connection.onClose.then(() => this.connections.delete(connection));
        });
        this.timer = setInterval(() => void this.check(), this.config.tokenRevocationCheckMs);
        this.timer.unref?.();
        if (this.config.auth !== 'token' || !this.tokens.followRevocations) return;
        // Awaited: once the broker listens, a revocation anywhere closes its connections at once.
        try {
            const stop = await this.tokens.followRevocations(hash => this.closeRevoked(new Set([hash])));
            if (this.timer) this.stopRevocations = stop;
            else stop();
        } catch (error) {
            this.logger.warn('Cannot follow token revocations yet; checking every tokenRevocationCheckMs instead', (error as Error).message);
        }
    }

    @eventDispatcher.listen(onServerMainShutdown)
    stop(): void {
        clearInterval(this.timer);
        this.timer = undefined;
        this.stopFollowing?.();
        this.stopRevocations?.();
        this.stopRevocations = undefined;
        this.connections.clear();
    }

    /** Closes the connections whose token is no longer live. */
    async check(): Promise<void> {
        if (this.checking) return;
        this.checking = true;
        try {
            const hashes = new Set<string>();
            for (const connection of this.connections) {
                const hash = tokenHashOf(connection);
                if (hash) hashes.add(hash);
            }
            if (!hashes.size) return;
            const live = await this.tokens.liveHashes([...hashes]);
            for (const hash of live) hashes.delete(hash);
            this.closeRevoked(hashes);
        } catch (error) {
            this.logger.error('Could not check for revoked tokens', error);
        } finally {
            this.checking = false;
        }
    }

    protected closeRevoked(hashes: Set<string>): void {
        if (!hashes.size) return;
        for (const connection of [...this.connections]) {
            const hash = tokenHashOf(connection);
            if (hash && hashes.has(hash)) connection.closeFor(CloseCode.tokenRevoked, 'token revoked');
        }
    }
}

function tokenHashOf(connection: BrokerConnection): string | undefined {
    const session = connection.sessionState.getSession();
    return session instanceof PeerSession ? session.grant?.hash : undefined;
}
