import { App, cli, Flag, parseCliArgs } from '@deepkit/app';
import { ClassType } from '@deepkit/core';
import { ConsoleTransport, Logger } from '@deepkit/logger';
import { ReflectionClass } from '@deepkit/type';
import { InjectorContext } from '@deepkit/injector';
import { assertValidConfig, BrokerConfig } from './config';
import { AuditLog } from './registry/audit-log';
import { AuditEvent, AuditKind } from './registry/entities';
import { PeerRegistry } from './registry/peer-registry';
import { TokenStore } from './registry/token-store';
import { DatabaseInUse } from './registry/database-lock';
import { BrokerRuntime, PortInUse, TokenDatabaseHandle } from './runtime';

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
        /** @description default call timeout recommended to peers, ms */
        callTimeoutMs?: number & Flag,
        /** @description protocol violations before a connection is closed */
        maxProtocolViolations?: number & Flag,
        /** @description routed calls in the audit trail: aggregate, each or off */
        auditCalls?: ('each' | 'aggregate' | 'off') & Flag,
        /** @description unsent bytes per connection before it is closed as a slow consumer (0: 2 × maxPayloadBytes + 4 MiB) */
        maxBufferedBytes?: number & Flag,
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
    ): Promise<number> {
        const flags = {
            host, port, database, auth, tokenDatabase, maxPayloadBytes, messagesPerSecond, callTimeoutMs, maxProtocolViolations, auditCalls,
            maxBufferedBytes, handshakeTimeoutMs, maxConnectionsPerAddress, maxConnections, pingIntervalMs, registryRetentionDays,
            registryMaxOfflinePeers, tokenRevocationCheckMs,
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
        const runtime = this.injector.get(BrokerRuntime);
        try {
            await runtime.start();
        } catch (error) {
            // Conditions the operator fixes: one line saying how, not a stack.
            if (error instanceof DatabaseInUse || error instanceof PortInUse) {
                this.logger.error(error.message);
                return 1;
            }
            throw error;
        }
        await new Promise<void>(resolve => {
            const stop = (signal: string) => {
                this.logger.log(`${signal}: stopping, peers are told and pending writes are flushed …`);
                runtime.stop().then(resolve, resolve);
            };
            process.once('SIGINT', () => stop('SIGINT'));
            process.once('SIGTERM', () => stop('SIGTERM'));
        });
        return 0;
    }
}

async function openTokens(injector: InjectorContext): Promise<TokenStore> {
    await injector.get(TokenDatabaseHandle).migrate();
    return injector.get(TokenStore);
}

/** Read-only: a broker may be running on the same database, and it owns the rows. */
async function openRegistry(injector: InjectorContext): Promise<PeerRegistry> {
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
    return `${event.at.toISOString()}  ${printable(event.kind).padEnd(11)} ${event.peerId === undefined ? '-' : printable(event.peerId)}  ${what}  (session ${printable(event.session)})`;
}

@cli.controller('peers', { description: 'List the peers in the registry (from the database; works while the broker runs).' })
export class PeersCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(
        /** @description only peers online when the broker last wrote the registry */
        online: boolean & Flag = false,
    ): Promise<number> {
        const registry = await openRegistry(this.injector);
        const peers = registry.list(online ? { online: true } : {});
        if (!peers.length) this.logger.log('No peers registered yet.');
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
        /** @description peer IDs it may register: exact, prefix* or *; repeat the flag for more */
        peer: string[] & Flag = [],
        /** @description if given, the only peers it may send to */
        allow: string[] & Flag = [],
        /** @description peers it may never send to */
        deny: string[] & Flag = [],
        /** @description may watch the whole broker */
        admin: boolean & Flag = false,
    ): Promise<number> {
        try {
            const token = await (await openTokens(this.injector)).create(name, { peerIds: peer, allowTargets: allow, denyTargets: deny, admin });
            this.logger.log(`Token "${name}" (peers: ${peer.join(', ') || 'none'}). Keep it; it is not shown again:`);
            process.stdout.write(token + '\n');
            return 0;
        } catch (error) {
            this.logger.error((error as Error).message);
            return 1;
        }
    }
}

@cli.controller('token:revoke', { description: 'Revoke a peer token; new connections with it are refused.' })
export class TokenRevokeCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(name: string): Promise<number> {
        if (await (await openTokens(this.injector)).revoke(name)) {
            this.logger.log(`Token "${name}" revoked.`);
            return 0;
        }
        this.logger.error(`No live token named "${name}". See token:list.`);
        return 1;
    }
}

@cli.controller('token:list', { description: 'List peer tokens (names and grants, never the tokens).' })
export class TokenListCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(): Promise<number> {
        for (const token of await (await openTokens(this.injector)).list()) {
            const state = token.revokedAt ? `revoked ${token.revokedAt.toISOString()}` : 'active';
            const list = (patterns: string[]) => patterns.map(printable).join(', ');
            this.logger.log(`${printable(token.name)}  ${state}  peers: ${list(token.peerIds)}  allow: ${list(token.allowTargets) || '*'}  deny: ${list(token.denyTargets) || '-'}${token.admin ? '  admin' : ''}`);
        }
        return 0;
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
    ): Promise<number> {
        await openRegistry(this.injector);
        for (const event of await this.injector.get(AuditLog).query({ peerId: peer, kind, limit })) {
            this.logger.log(formatAuditEvent(event));
        }
        return 0;
    }
}

/** The commands `server/main.ts` offers; its `--help` lists these and no others. */
export const brokerCommands: ClassType[] = [StartCommand, PeersCommand, TokenCreateCommand, TokenRevokeCommand, TokenListCommand, AuditCommand];

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

/**
 * The first flag `argv` gives its command that the command does not have, as a line to print. Deepkit ignores
 * unknown flags, so a typo (`--prot 80`) would start a broker on the default port.
 */
export function unknownFlag(argv: string[]): string | undefined {
    const [name, ...rest] = argv;
    const command = brokerCommands.find(candidate => cli._fetch(candidate)?.name === name);
    if (!command || rest.includes('--help')) return undefined;
    const known = new Set(ReflectionClass.from(command).getMethod('execute').getParameters().map(parameter => parameter.name));
    // Parsed as Deepkit parses them, so `--port=80` (which Deepkit reads as a flag named "port=80") is unknown too.
    const unknown = Object.keys(parseCliArgs(rest)).find(flag => flag !== '@' && !known.has(flag));
    return unknown === undefined ? undefined : `Unknown flag "--${unknown}" for ${name}. See: ${name} --help`;
}
