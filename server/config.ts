import { deserialize, integer, Maximum, Minimum, MinLength, Pattern, Positive, ReflectionClass, validate } from '@deepkit/type';
import { BROKER_ID_PATTERN, CLUSTER_NAME_PATTERN } from './cluster/cluster-names';
import { hasNatsCredentials } from './cluster/nats-servers';

/**
 * The broker's settings. Each can be set in the environment as `SWITCHBOARD_` + the name in upper snake case
 * (`SWITCHBOARD_PORT`, `SWITCHBOARD_MAX_PAYLOAD_BYTES`), or as a flag of `start` (`--port`, `--maxPayloadBytes`).
 */
export class BrokerConfig {
    /** Interface to listen on. */
    host: string & MinLength<1> = '127.0.0.1';

    /** TCP port for HTTP and the WebSocket RPC endpoint; 0 picks a free one. */
    port: integer & Minimum<0> & Maximum<65535> = 8080;

    /** SQLite file of the registry and audit trail (created if missing); `:memory:` keeps nothing. */
    database: string & MinLength<1> = 'var/switchboard.sqlite';

    /** `open`: anyone may register a free ID (development). `token`: peers authenticate with tokens made by `token:create`. */
    auth: 'open' | 'token' = 'open';

    /** SQLite file holding the hashed peer tokens; empty means the registry database. */
    tokenDatabase: string = '';

    /** Largest message the broker accepts, in bytes; larger ones are refused with PayloadTooLarge. */
    maxPayloadBytes: integer & Minimum<1024> = 16 * 1024 * 1024;

    /** Messages a connection may send per second (burst of the same size); beyond it: RateLimited. */
    messagesPerSecond: integer & Positive = 10_000;

    /**
     * Bytes a connection may make the broker send per second (burst of the same size): its frames, and for a multicast
     * every copy (targets × copy size), charged before any work is done; beyond it: RateLimited. 0: four times
     * maxPayloadBytes (64 MiB). Set it at least to maxPayloadBytes.
     */
    bytesPerSecond: integer & Minimum<0> = 0;

    /**
     * Protocol violations (malformed frames, frames only the broker may write, forged sources, lying chunks) after
     * which a connection is closed with a reason. Each violation is also answered with a typed error.
     */
    maxProtocolViolations: integer & Positive = 10;

    /**
     * How routed peer calls enter the audit trail. `aggregate`: one row per caller, target and action each second,
     * with a count and the first and last time. `each`: a row per call (costly under load). `off`: none. Denials,
     * registrations, takeovers and failed authentications are always recorded.
     */
    auditCalls: 'each' | 'aggregate' | 'off' = 'aggregate';

    /** The default call timeout the broker recommends to SDK peers, in milliseconds. */
    callTimeoutMs: integer & Positive = 30_000;

    /** How much the broker logs. */
    logLevel: 'none' | 'alert' | 'error' | 'warning' | 'log' | 'info' | 'debug' = 'log';

    /** Days the registry keeps a peer that has not been seen; 0 keeps peers forever (within registryMaxOfflinePeers). */
    registryRetentionDays: integer & Minimum<0> = 30;

    /**
     * Offline peers the registry keeps at most; past it the longest-offline ones are dropped. In open mode anyone may
     * register any free ID, so without a bound a client registering random IDs would grow the registry forever.
     */
    registryMaxOfflinePeers: integer & Positive = 100_000;

    /** How often the broker looks for revoked tokens among its live connections (and closes them), in milliseconds. */
    tokenRevocationCheckMs: integer & Positive = 5_000;

    /**
     * Bytes that may wait unsent on one connection; a client that reads slower than it is sent to is closed past it
     * ("slow consumer"). 0: twice maxPayloadBytes plus 4 MiB. Set it above maxPayloadBytes.
     */
    maxBufferedBytes: integer & Minimum<0> = 0;

    /**
     * A request that would overflow its receiver's unsent bytes (maxBufferedBytes) is refused to its sender
     * (ReceiverBusy), not written. A receiver whose unsent bytes stay above half the bound this many milliseconds after
     * such a refusal does not read: it is closed as a slow consumer.
     */
    slowConsumerMs: integer & Positive = 10_000;

    /**
     * Milliseconds a peer ID stays held for its owner after its connection is lost without deregistering (a crash, a
     * network cut, a slow-consumer close): within it only the owner (the same reclaim secret in open mode, the same
     * token in token mode) may register the ID; anyone else gets PeerIdTaken. A clean deregister (`Peer.close()`)
     * releases it at once. 0: released at once.
     */
    peerIdGraceMs: integer & Minimum<0> = 30_000;

    /**
     * Milliseconds a client has to send its first message after connecting (and an HTTP client to send its request
     * headers); then it is closed as idle.
     */
    handshakeTimeoutMs: integer & Positive = 10_000;

    /**
     * Open WebSockets one client address may hold (IPv6: one /64); more are closed with a reason. 0: no limit. Behind
     * a reverse proxy every client has the proxy's address: raise it or set 0 there.
     */
    maxConnectionsPerAddress: integer & Minimum<0> = 4096;

    /** Open WebSockets in total; more are closed with a reason. 0: no limit beyond the operating system's. */
    maxConnections: integer & Minimum<0> = 0;

    /**
     * Milliseconds between the broker's WebSocket pings. A client that answers neither of two pings in a row (no pong,
     * no message) is closed as unresponsive and its peer ID released.
     */
    pingIntervalMs: integer & Positive = 15_000;

    /**
     * NATS server URLs, comma-separated (`nats://10.0.0.5:4222,nats://10.0.0.6:4222`), with JetStream enabled. Set, the
     * broker joins the cluster named `cluster` on it: one peer namespace across brokers. Empty: a single broker.
     */
    natsUrl: string = '';

    /**
     * Accept a natsUrl without credentials (`nats://user:password@host:4222`): a NATS that anyone who reaches it may
     * read and write, the cluster's directory and frames included. For a development machine only; logged loudly.
     */
    natsInsecure: boolean = false;

    /** Brokers with the same cluster name on one NATS serve one peer namespace; other clusters never see them. */
    cluster: string & Pattern<typeof CLUSTER_NAME_PATTERN> = 'switchboard';

    /** This broker's ID in its cluster (letters, digits, `_-`); empty: generated at start and logged. */
    brokerId: string & Pattern<typeof BROKER_ID_PATTERN> = '';

    /** Milliseconds between a cluster broker's heartbeats. */
    clusterHeartbeatMs: integer & Positive = 500;

    /**
     * Milliseconds without a heartbeat after which a cluster broker counts as dead: calls to its peers fail and its
     * peers go offline. A broker cut off from NATS for this long closes its peers' connections so they move on.
     */
    clusterDeathTimeoutMs: integer & Positive = 2_000;
    /**
     * SIGTERM or `switchboard drain`: how long the broker waits, after telling its peers to move to another broker and
     * refusing new connections, for its connections to go before it stops anyway.
     */
    drainTimeoutMs: integer & Positive = 30_000;
}

/** How each setting is spelled in the environment, for messages that name it. */
export function environmentName(setting: string): string {
    return 'SWITCHBOARD_' + setting.replace(/[A-Z]/g, letter => '_' + letter).toUpperCase();
}

/** Deepkit's CLI spells flags like the setting: `--maxPayloadBytes`. */
export function flagName(setting: string): string {
    return '--' + setting;
}

/**
 * Checks each SWITCHBOARD_* variable against its setting's type. Deepkit's env loader quietly keeps the default for
 * a value outside a union (`SWITCHBOARD_AUTH=tokn`); an operator should hear about the typo instead.
 * @returns one message per bad variable
 */
export function checkEnvironment(env: Record<string, string | undefined>): { setting: string, problem: string }[] {
    const problems: { setting: string, problem: string }[] = [];
    for (const property of ReflectionClass.from(BrokerConfig).getProperties()) {
        const raw = env[environmentName(property.name)];
        if (raw === undefined) continue;
        let value: unknown;
        try {
            value = deserialize(raw, undefined, undefined, undefined, property.type);
        } catch (error) {
            problems.push({ setting: property.name, problem: `cannot use ${JSON.stringify(raw)}` });
            continue;
        }
        const [first] = validate(value, property.type);
        if (first || value === undefined) problems.push({ setting: property.name, problem: `${first?.message ?? 'not an accepted value'} (got ${JSON.stringify(raw)})` });
    }
    return problems;
}

/** A setting that does not validate. The message names it as the environment and the CLI spell it. */
export class ConfigError extends Error {
    constructor(public readonly setting: string, problem: string) {
        super(`Invalid setting "${setting}" (${environmentName(setting)} or ${flagName(setting)}): ${problem}`);
    }
}

export function assertValidConfig(config: BrokerConfig): void {
    const [first] = validate<BrokerConfig>(config);
    if (first) throw new ConfigError(first.path, `${first.message} (got ${JSON.stringify(first.value)})`);
    if (config.bytesPerSecond && config.bytesPerSecond < config.maxPayloadBytes) {
        throw new ConfigError('bytesPerSecond', `must be at least maxPayloadBytes (${config.maxPayloadBytes}), or the largest message could never be sent (got ${config.bytesPerSecond})`);
    }
    if (config.natsUrl && !config.natsInsecure && !hasNatsCredentials(config.natsUrl)) {
        throw new ConfigError('natsUrl', 'has no credentials: run nats-server with authorization and per-broker permissions (README: Cluster) and give this broker its user, nats://user:password@host:4222; or, on a development machine only, set natsInsecure (--natsInsecure)');
    }
    if (config.clusterDeathTimeoutMs < config.clusterHeartbeatMs * 2) {
        throw new ConfigError('clusterDeathTimeoutMs', `must be at least twice clusterHeartbeatMs (${config.clusterHeartbeatMs}), or one late heartbeat kills a broker (got ${config.clusterDeathTimeoutMs})`);
    }
}
