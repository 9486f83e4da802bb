import { Maximum, Minimum, MinLength, Positive, integer } from '@deepkit/type';

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

    /** Log level: 0 nothing … 5 debug. */
    logLevel: integer & Minimum<0> & Maximum<5> = 3;
}

/** How each setting is spelled in the environment, for messages that name it. */
export function environmentName(setting: string): string {
    return 'SWITCHBOARD_' + setting.replace(/[A-Z]/g, letter => '_' + letter).toUpperCase();
}

/** Deepkit's CLI spells flags like the setting: `--maxPayloadBytes`. */
export function flagName(setting: string): string {
    return '--' + setting;
}
