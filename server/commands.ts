import { App, cli, Flag } from '@deepkit/app';
import { ClassType } from '@deepkit/core';
import { ConsoleTransport, Logger } from '@deepkit/logger';
import { InjectorContext } from '@deepkit/injector';
import { assertValidConfig, BrokerConfig } from './config';
import { AuditLog } from './registry/audit-log';
import { AuditEvent, AuditKind } from './registry/entities';
import { PeerRegistry } from './registry/peer-registry';
import { PeerTokenStore } from './registry/token-store';
import { ClusterState } from './cluster/cluster-state';
import { DatabaseInUse } from './registry/database-lock';
import { BrokerRuntime, PortInUse, TokenDatabaseHandle } from './runtime';
import { NatsUnreachable } from './cluster/nats-link';
import { missingDatabase } from './command-line-checks';
import { DrainCommand } from './drain-command';

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

/** Where a token command finds the tokens: flags first, then the SWITCHBOARD_* variables. */
interface TokenStoreFlags {
    natsUrl?: string;
    cluster?: string;
    database?: string;
    tokenDatabase?: string;
    /** Only token:create may make a new database (it runs before the broker's first start). */
    mayCreate?: boolean;
}

/**
 * Runs `work` on the token store: the cluster's (JetStream KV) when a NATS URL is set, else the broker's SQLite.
 * Prints the reason and returns 1 when the store is out of reach.
 */
async function withTokens(injector: InjectorContext, logger: Logger, flags: TokenStoreFlags, work: (tokens: PeerTokenStore) => Promise<number>): Promise<number> {
    const config = injector.get(BrokerConfig);
    if (flags.natsUrl !== undefined) config.natsUrl = flags.natsUrl;
    if (flags.cluster !== undefined) config.cluster = flags.cluster;
    if (flags.database !== undefined) config.database = flags.database;
    if (flags.tokenDatabase !== undefined) config.tokenDatabase = flags.tokenDatabase;
    try {
        assertValidConfig(config);
        const missing = !config.natsUrl && !flags.mayCreate && missingDatabase(config.tokenDatabase || config.database);
        if (missing) throw new Error(missing);
        if (!config.natsUrl) await injector.get(TokenDatabaseHandle).migrate();
        return await work(injector.get<PeerTokenStore>());
    } catch (error) {
        logger.error((error as Error).message);
        return 1;
    } finally {
        // An open NATS connection would keep the command from exiting.
        await injector.get(ClusterState).close();
    }
}

/**
 * Read-only: a broker may be running on the same database, and it owns the rows. A database that does not exist is
 * not created (a command run in the wrong folder would leave an empty one there): the error says where it looked.
 */
async function openRegistry(injector: InjectorContext, database: string | undefined): Promise<PeerRegistry> {
    const config = injector.get(BrokerConfig);
    if (database !== undefined) config.database = database;
    const missing = missingDatabase(config.database);
    if (missing) throw new Error(missing);
    await injector.get(TokenDatabaseHandle).migrate();
    const registry = injector.get(PeerRegistry);
    await registry.open({ readOnly: true });
    return registry;
}

const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\\]|<(?=\/?[a-zA-Z]+>)/g;
const NAMED_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

/**
 * Text from the database, safe to print on one line: control characters (a newline in an ID would forge a line),
 * bidirectional overrides (they reorder what a terminal shows) and the logger's colour tags (`<red>`) are escaped.
 */
export function printable(text: string | undefined): string {
    if (text === undefined) return '';
    return text.replace(UNPRINTABLE, character => NAMED_ESCAPES[character] ?? '\\u' + character.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** One audit row as the `audit` command prints it. */
export function formatAuditEvent(event: AuditEvent): string {
    const what = [
        event.target && `→ ${printable(event.target)}`,
        event.controller && `${printable(event.controller)}.${printable(event.action)}`,
        event.reason && printable(event.reason),
    ].filter(Boolean).join('  ');
    const broker = event.brokerId ? `, broker ${printable(event.brokerId)}` : '';
    return `${event.at.toISOString()}  ${printable(event.kind).padEnd(11)} ${event.peerId === undefined ? '-' : printable(event.peerId)}  ${what}  (session ${printable(event.session)}${broker})`;
}

@cli.controller('peers', { description: 'List the peers in the registry (from the database; works while the broker runs).' })
export class PeersCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(
        /** @description only peers online when the broker last wrote the registry */
        online: boolean & Flag = false,
        /** @description SQLite file of registry and audit trail (default: SWITCHBOARD_DATABASE, else var/switchboard.sqlite) */
        database?: string & Flag,
    ): Promise<number> {
        const registry = await openRegistry(this.injector, database).catch((error: Error) => error);
        if (registry instanceof Error) {
            this.logger.error(registry.message);
            return 1;
        }
        const peers = registry.list(online ? { online: true } : {});
        if (!peers.length && online) {
            const registered = registry.list().length;
            this.logger.log(registered ? `No peer online (${registered} registered, all offline; see: peers).` : 'No peers registered yet.');
        } else if (!peers.length) this.logger.log('No peers registered yet.');
        for (const peer of peers) {
            this.logger.log(`${peer.online ? 'online ' : 'offline'}  ${printable(peer.id)}  last seen ${peer.lastSeen.toISOString()}  [${peer.capabilities.map(printable).join(', ')}]`);
        }
        return 0;
    }
}

@cli.controller('token:create', { description: 'Create a peer token for token mode; prints it once.' })
export class TokenCreateCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(
        /** @description a name for the token (shown in the audit trail) */
        name: string,
        // In a doc comment Deepkit cuts the text at its first `*`; the description is given in the type instead.
        peer: string[] & Flag<{ description: 'peer IDs it may register: exact, prefix* or *; repeat the flag for more' }> = [],
        /** @description if given, the only peers it may send to */
        allow: string[] & Flag = [],
        /** @description peers it may never send to */
        deny: string[] & Flag = [],
        /** @description may watch the whole broker */
        admin: boolean & Flag = false,
        /** @description NATS URLs of a cluster: its tokens are made there (default: SWITCHBOARD_NATS_URL; empty: the broker's SQLite) */
        natsUrl?: string & Flag,
        /** @description cluster name (default: SWITCHBOARD_CLUSTER, else switchboard) */
        cluster?: string & Flag,
        /** @description SQLite file of the broker (default: SWITCHBOARD_DATABASE, else var/switchboard.sqlite) */
        database?: string & Flag,
        /** @description SQLite file of peer tokens, if the broker keeps them apart (default: SWITCHBOARD_TOKEN_DATABASE) */
        tokenDatabase?: string & Flag,
    ): Promise<number> {
        return withTokens(this.injector, this.logger, { natsUrl, cluster, database, tokenDatabase, mayCreate: true }, async tokens => {
            const token = await tokens.create(name, { peerIds: peer, allowTargets: allow, denyTargets: deny, admin });
            this.logger.log(`Token "${name}" (peers: ${peer.join(', ') || 'none'}). Keep it; it is not shown again:`);
            process.stdout.write(token + '\n');
            return 0;
        });
    }
}

@cli.controller('token:revoke', { description: 'Revoke a peer token; new connections with it are refused.' })
export class TokenRevokeCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(
        name: string,
        /** @description NATS URLs of a cluster: revoke it there, on every broker (default: SWITCHBOARD_NATS_URL) */
        natsUrl?: string & Flag,
        /** @description cluster name (default: SWITCHBOARD_CLUSTER, else switchboard) */
        cluster?: string & Flag,
        /** @description SQLite file of the broker (default: SWITCHBOARD_DATABASE, else var/switchboard.sqlite) */
        database?: string & Flag,
        /** @description SQLite file of peer tokens, if the broker keeps them apart (default: SWITCHBOARD_TOKEN_DATABASE) */
        tokenDatabase?: string & Flag,
    ): Promise<number> {
        return withTokens(this.injector, this.logger, { natsUrl, cluster, database, tokenDatabase }, async tokens => {
            if (await tokens.revoke(name)) {
                this.logger.log(`Token "${name}" revoked.`);
                return 0;
            }
            this.logger.error(`No live token named "${name}". See token:list.`);
            return 1;
        });
    }
}

@cli.controller('token:list', { description: 'List peer tokens (names and grants, never the tokens).' })
export class TokenListCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(
        /** @description NATS URLs of a cluster: list its tokens (default: SWITCHBOARD_NATS_URL) */
        natsUrl?: string & Flag,
        /** @description cluster name (default: SWITCHBOARD_CLUSTER, else switchboard) */
        cluster?: string & Flag,
        /** @description SQLite file of the broker (default: SWITCHBOARD_DATABASE, else var/switchboard.sqlite) */
        database?: string & Flag,
        /** @description SQLite file of peer tokens, if the broker keeps them apart (default: SWITCHBOARD_TOKEN_DATABASE) */
        tokenDatabase?: string & Flag,
    ): Promise<number> {
        return withTokens(this.injector, this.logger, { natsUrl, cluster, database, tokenDatabase }, async tokens => {
            for (const token of await tokens.list()) {
                const state = token.revokedAt ? `revoked ${token.revokedAt.toISOString()}` : 'active';
                const list = (patterns: string[]) => patterns.map(printable).join(', ');
                this.logger.log(`${printable(token.name)}  ${state}  peers: ${list(token.peerIds)}  allow: ${list(token.allowTargets) || '*'}  deny: ${list(token.denyTargets) || '-'}${token.admin ? '  admin' : ''}`);
            }
            return 0;
        });
    }
}

@cli.controller('audit', { description: 'Show the audit trail, oldest first.' })
export class AuditCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(
        /** @description only events by or aimed at this peer */
        peer?: string & Flag,
        /** @description register, takeover, deregister, denied, call, disconnect or auth-failed */
        kind?: AuditKind & Flag,
        /** @description how many of the newest events */
        limit: number & Flag = 50,
        /** @description SQLite file of registry and audit trail (default: SWITCHBOARD_DATABASE, else var/switchboard.sqlite) */
        database?: string & Flag,
        /** @description read the whole cluster's trail from NATS (default: SWITCHBOARD_NATS_URL; rows of every broker) */
        natsUrl?: string & Flag,
        /** @description cluster name, with natsUrl (default: SWITCHBOARD_CLUSTER, else switchboard) */
        cluster?: string & Flag,
    ): Promise<number> {
        const config = this.injector.get(BrokerConfig);
        const url = natsUrl ?? config.natsUrl;
        if (url) {
            try {
                for (const event of await clusterAudit().readClusterTrail(url, cluster ?? config.cluster, { peerId: peer, kind, limit })) this.logger.log(formatAuditEvent(event));
                return 0;
            } catch (error) {
                this.logger.error((error as Error).message);
                return 1;
            }
        }
        const opened = await openRegistry(this.injector, database).then(() => undefined, (error: Error) => error);
        if (opened) {
            this.logger.error(opened.message);
            return 1;
        }
        for (const event of await this.injector.get(AuditLog).query({ peerId: peer, kind, limit })) {
            this.logger.log(formatAuditEvent(event));
        }
        return 0;
    }
}

/** The commands `server/main.ts` offers; its `--help` lists these and no others. */
export const brokerCommands: ClassType[] = [StartCommand, PeersCommand, TokenCreateCommand, TokenRevokeCommand, TokenListCommand, AuditCommand, DrainCommand];

/**
 * Makes the App's command line ours alone. FrameworkModule brings `server:start` (a server without our start-up
 * checks), `migration:*` (we migrate on start) and `debug:*`; Deepkit has no option to leave them out, so they are
 * taken out of its CLI registry once the App is built. Also makes the log plain when stdout is not a terminal
 * (Deepkit's console transport writes colour codes always). tests/cli.test.ts fails if Deepkit changes this.
 */
export function restrictToBrokerCommands(app: App<any>): void {
    app.serviceContainer.process();  // fills the registry; a no-op when the App is built already
    const registry = app.serviceContainer.cliControllerRegistry.controllers;
    const ours = registry.filter(config => config.controller && brokerCommands.includes(config.controller));
    registry.splice(0, registry.length, ...ours);
    const colours = process.stdout.isTTY === true && !('NO_COLOR' in process.env);
    app.get(Logger).setTransport([new ConsoleTransport(colours)]);
}

/** The cluster's audit reader, required by `audit --natsUrl` alone: the other commands never load the NATS client. */
function clusterAudit(): typeof import('./cluster/cluster-audit') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('./cluster/cluster-audit');
}
