import { cli, Flag } from '@deepkit/app';
import { InjectorContext } from '@deepkit/injector';
import { Logger } from '@deepkit/logger';
import { assertValidConfig, BrokerConfig } from '../config';
import { NatsUnreachable } from '../cluster/nats-link';
import { DatabaseInUse } from '../registry/database-lock';
import { BrokerRuntime, PortInUse } from '../runtime';

@cli.controller('start', { description: 'Start the broker (HTTP + WebSocket RPC on one port). Settings also come from SWITCHBOARD_* variables.' })
export class StartCommand {
    constructor(protected config: BrokerConfig, protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(
        /** @description interface to listen on */
        host?: string & Flag,
        /** @description TCP port; 0 picks a free one */
        port?: number & Flag,
        /** @description SQLite file of registry and audit trail */
        database?: string & Flag,
        /** @description open (development) or token */
        auth?: ('open' | 'token') & Flag,
        /** @description SQLite file of peer tokens (default: the registry database) */
        tokenDatabase?: string & Flag,
        /** @description largest accepted message in bytes */
        maxPayloadBytes?: number & Flag,
        /** @description messages per second per connection */
        messagesPerSecond?: number & Flag,
        /** @description bytes per second per connection, every multicast copy counted (0: 4 × maxPayloadBytes) */
        bytesPerSecond?: number & Flag,
        /** @description default call timeout recommended to peers, ms */
        callTimeoutMs?: number & Flag,
        /** @description protocol violations before a connection is closed */
        maxProtocolViolations?: number & Flag,
        /** @description routed calls in the audit trail: aggregate, each or off */
        auditCalls?: ('each' | 'aggregate' | 'off') & Flag,
        /** @description unsent bytes per connection before it is closed as a slow consumer (0: 2 × maxPayloadBytes + 4 MiB) */
        maxBufferedBytes?: number & Flag,
        /** @description ms a receiver may stay full after a refused request before it is closed as a slow consumer */
        slowConsumerMs?: number & Flag,
        /** @description ms an ID lost without deregister stays held for its owner (0: released at once) */
        peerIdGraceMs?: number & Flag,
        /** @description ms a new connection has to send its first message */
        handshakeTimeoutMs?: number & Flag,
        /** @description connections per client address (0: no limit) */
        maxConnectionsPerAddress?: number & Flag,
        /** @description connections in all (0: no limit) */
        maxConnections?: number & Flag,
        /** @description ms between pings; two unanswered pings close a connection */
        pingIntervalMs?: number & Flag,
        /** @description days an offline peer stays in the registry (0: for ever) */
        registryRetentionDays?: number & Flag,
        /** @description offline peers kept in the registry at most */
        registryMaxOfflinePeers?: number & Flag,
        /** @description ms between checks for revoked tokens of live connections */
        tokenRevocationCheckMs?: number & Flag,
        /** @description NATS URLs, comma-separated: join a cluster of brokers (empty: a single broker) */
        natsUrl?: string & Flag,
        /** @description accept a NATS URL without credentials (development only: anyone reaching NATS can read and inject) */
        natsInsecure?: boolean & Flag,
        /** @description cluster name: brokers with the same name on one NATS share one peer namespace */
        cluster?: string & Flag,
        /** @description this broker's ID in the cluster (default: generated) */
        brokerId?: string & Flag,
        /** @description ms between cluster heartbeats */
        clusterHeartbeatMs?: number & Flag,
        /** @description ms without heartbeats after which a cluster broker counts as dead */
        clusterDeathTimeoutMs?: number & Flag,
        /** @description SIGTERM or `drain`: ms to wait for peers to move before stopping anyway */
        drainTimeoutMs?: number & Flag,
    ): Promise<number> {
        const flags = {
            host, port, database, auth, tokenDatabase, maxPayloadBytes, messagesPerSecond, bytesPerSecond, callTimeoutMs, maxProtocolViolations, auditCalls,
            maxBufferedBytes, slowConsumerMs, peerIdGraceMs, handshakeTimeoutMs, maxConnectionsPerAddress, maxConnections, pingIntervalMs, registryRetentionDays,
            registryMaxOfflinePeers, tokenRevocationCheckMs, natsUrl, natsInsecure, cluster, brokerId, clusterHeartbeatMs, clusterDeathTimeoutMs,
            drainTimeoutMs,
        };
        for (const [name, value] of Object.entries(flags)) {
            if (value !== undefined) (this.config as any)[name] = value;
        }
        try {
            assertValidConfig(this.config);
        } catch (error) {
            this.logger.error((error as Error).message);
            return 1;
        }
        // Signals are taken before start-up: one that comes while it runs, or just after the "listening" line, stops
        // the broker once started instead of killing it. Every signal, not once: Ctrl-C under `npm start` delivers
        // SIGINT twice (from the terminal and forwarded by npm), and one without a listener would kill it mid-flush.
        let signalled: NodeJS.Signals | undefined;
        let onSignal = () => {};
        const takeSignal = (signal: NodeJS.Signals) => {
            signalled ??= signal;
            onSignal();
        };
        process.on('SIGINT', takeSignal);
        process.on('SIGTERM', takeSignal);
        try {
            const runtime = this.injector.get(BrokerRuntime);
            try {
                await runtime.start();
            } catch (error) {
                // Conditions the operator fixes: one line saying how, not a stack.
                if (error instanceof DatabaseInUse || error instanceof PortInUse || error instanceof NatsUnreachable) {
                    this.logger.error(error.message);
                    return 1;
                }
                throw error;
            }
            await new Promise<void>(resolve => {
                onSignal = resolve;
                if (signalled) resolve();
                // Drained on request (`switchboard drain`): done.
                void runtime.finished.then(resolve);
            });
            // SIGTERM (a rolling restart, an orchestrator) drains: peers move first. A second signal stops at once.
            const ending = signalled === 'SIGTERM' ? runtime.drain() : runtime.stop();
            if (signalled) this.logger.log(`${signalled}: ${signalled === 'SIGTERM' ? 'draining' : 'stopping'}, peers are told and pending writes are flushed …`);
            onSignal = () => void runtime.stop();
            return await ending.then(() => 0, error => {
                this.logger.error(`Stopping failed: ${(error as Error).message}`);
                return 1;
            });
        } finally {
            process.off('SIGINT', takeSignal);
            process.off('SIGTERM', takeSignal);
        }
    }
}
