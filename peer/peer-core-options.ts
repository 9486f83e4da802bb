import { ClassType } from '@deepkit/core';
import { NormalizedProvider } from '@deepkit/injector';
import { DatabaseAdapter } from '@deepkit/orm';
import { ControllerDefinition } from '@deepkit/rpc';
import { BackoffOptions } from './backoff';
import { CircuitBreakerOptions } from './circuit-breaker';
import { FeatureMap } from './feature';
import { PresenceMode } from './presence-follower';
import { SealingOptions } from './sealing/sealing';

/** What every peer takes, with or without the built-in features (PeerOptions adds theirs). */
export interface PeerCoreOptions<F extends FeatureMap = FeatureMap> {
    /**
     * The broker, e.g. `ws://127.0.0.1:8080`, or several brokers of one cluster: the peer connects to the first that
     * answers and, when its broker is lost, moves to the next (one backoff delay per round over the list).
     */
    url: string | string[];
    /** This peer's ID: letters, digits, `._-`, at most 64. */
    id: string;
    /** A peer token, for brokers in token mode. */
    token?: string;
    /**
     * Where the outbox, caches and the reclaim secret live: a SQLite file, `:memory:` (the default; nothing survives a
     * restart), or any Deepkit ORM adapter — in a browser, `WebStorageAdapter` (kept in sessionStorage).
     */
    storage?: string | DatabaseAdapter;
    /**
     * How long `connect()`/`start()` keeps retrying a broker that answers but cannot register this peer yet (Timeout,
     * Disconnected, ClusterUnavailable, e.g. right after its cluster link came back); default 10 000.
     */
    connectTimeoutMs?: number;
    /** Default call timeout; default: what the broker recommends (`whoami().callTimeoutMs`). */
    callTimeoutMs?: number;
    /** Capabilities announced after every (re-)registration. */
    capabilities?: string[];
    /** Reconnect after a lost connection; `false` to stay disconnected. */
    reconnect?: Partial<BackoffOptions> | false;
    /** Retries of idempotent actions. */
    retry?: Partial<BackoffOptions> & { attempts?: number };
    circuitBreaker?: Partial<CircuitBreakerOptions>;
    /**
     * Milliseconds since the epoch, for the circuit breakers' cool-down and the relay's TTLs; default `Date.now`.
     * Tests pass a clock they move, so cool-downs and expiry need no waiting.
     */
    clock?: () => number;
    /**
     * Milliseconds between pings to the broker (default 15 000). When two pings in a row go unanswered and nothing
     * else arrives, the connection is taken for dead (a frozen broker, a half-open TCP connection): it is closed,
     * pending calls fail with Disconnected, and the peer reconnects with its usual backoff.
     */
    pingIntervalMs?: number;
    /** Extra DI providers for the controllers this peer exposes. */
    providers?: NormalizedProvider[];
    /** Controllers to serve from the moment the peer registers: `[[ChatController, 'chat'], …]`. */
    expose?: [ClassType, string | ControllerDefinition<any>][];
    /** A WebSocket class; default the platform's (browsers), else the `ws` package (Node 20 has none). */
    webSocket?: unknown;
    /** Reported by discovery's `info()`. */
    appVersion?: string;
    /**
     * Whose presence this peer follows (presence$, outbox flushes and fresh circuits on a peer's return): `'interest'`
     * (default) the peers it deals with (see PresenceMode), `'all'` every peer of the broker, `false` none.
     */
    presence?: PresenceMode;
    /**
     * End-to-end sealed chat, relay payloads, file chunks and collaboration updates between SDK peers (on by
     * default; `false` turns it off). See `peer.sealing`.
     */
    sealing?: Partial<SealingOptions> | false;
    /** Opt-in features by name (see peer/feature.ts): `{ state: replicatedState(), grants: grants() }` → `peer.features.state`. */
    features?: F;
}
