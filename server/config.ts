import { deserialize, integer, Maximum, Minimum, MinLength, Positive, ReflectionClass, validate } from '@deepkit/type';

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

    /** The default call timeout the broker recommends to SDK peers, in milliseconds. */
    callTimeoutMs: integer & Positive = 30_000;

    /** How much the broker logs. */
    logLevel: 'none' | 'alert' | 'error' | 'warning' | 'log' | 'info' | 'debug' = 'log';
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
}
