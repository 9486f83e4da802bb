import { Observable } from 'rxjs';

/**
 * What the brokers of a cluster share, and all a broker's cluster exchange needs of it: subjects to publish and
 * subscribe (heartbeats, one inbox per broker, audit rows) and key-value buckets with revisions, compare-and-set and a
 * watch (the peer directory, the peer ID holds). Two implementations: NATS with JetStream (server/cluster/bus/
 * nats-bus.ts), which a deployment uses, and an in-memory one (server/cluster/bus/memory-bus.ts), where several
 * brokers of one process share one bus: the exchange's compliance suite and the cluster's behaviour tests run on it
 * without a nats-server. testing/cluster-bus-compliance.ts is what both must do.
 *
 * No request/reply: the cluster's parts never wait for another broker's answer on the bus (a routed call's reply is
 * a frame on the caller's broker's inbox), so the interface does not offer what nothing uses.
 */
export interface ClusterBus {
    /** Whether the bus is reachable right now. While it is not, nothing may be published (see `publish`). */
    readonly connected: boolean;
    /** The link to the bus went down, or came back (after `open`; completes on `close`). */
    readonly events: Observable<BusEvent>;
    /** The largest message `publish` takes; larger ones travel in parts (server/cluster/envelope.ts). */
    readonly maxPayload: number;
    /** Where the bus is, as it may be logged (no passwords). */
    readonly description: string;

    /** Connects. @throws when the bus cannot be reached (NatsUnreachable for NATS) */
    open(): Promise<void>;
    /** Safe to call twice, and without open. */
    close(): Promise<void>;

    /**
     * Delivers `data` to every subscription of `subject`, later (never within this call) and in the order published
     * on that subject. Fire and forget: a subscriber that is not there misses it.
     * @throws when the bus is not connected, or `data` is larger than `maxPayload`
     */
    publish(subject: string, data: Uint8Array | string): void;
    /** `subject` may end in `>` (any tokens) or hold `*` (one token), as NATS subjects do. */
    subscribe(subject: string, handler: (data: Uint8Array) => void): BusSubscription;

    /** The bucket `name`, created if absent (every broker binds the same one; the first creates it). */
    keyValue(name: string, options: KeyValueOptions): Promise<BusKeyValue>;
}

export type BusEvent = 'disconnected' | 'reconnected';

/**
 * Where a broker's connections to a bus come from (MemoryBus): one for its exchange, one for the state its cluster
 * shares (tokens, registry history), as a broker on NATS has two NATS connections.
 */
export interface ClusterBusProvider {
    connect(name: string): ClusterBus;
}

export interface BusSubscription {
    unsubscribe(): void;
}

export interface KeyValueOptions {
    /** Largest value a key may hold, in bytes. */
    maxValueSize: number;
}

/**
 * A bucket of keys, each with its latest value only. Every write (put, create, update, delete) gets the next revision
 * of the bucket (one counter across all keys, as JetStream's stream sequence), and a delete leaves a `DEL` entry with
 * its own revision: `get` returns it, a watch shows it, `create` may write over it.
 */
export interface BusKeyValue {
    /** The latest entry of `key` (possibly a `DEL`), or undefined if the key was never written. */
    get(key: string): Promise<BusEntry | undefined>;
    /** @returns the revision written */
    put(key: string, value: Uint8Array | string): Promise<number>;
    /** Writes only if the key is absent or deleted: of racing creates, exactly one wins. @throws KeyConflict */
    create(key: string, value: Uint8Array | string): Promise<number>;
    /** Writes only if the key's latest revision is `revision` (compare-and-set). @throws KeyConflict */
    update(key: string, value: Uint8Array | string, revision: number): Promise<number>;
    /** Deletes; with `revision`, only if the key's latest revision is that one. @throws KeyConflict */
    delete(key: string, revision?: number): Promise<void>;
    /** The keys matching `filter` (a NATS subject pattern: `h.>`, `p.*`; default every key) whose latest entry is a PUT. */
    keys(filter?: string): Promise<string[]>;
    /**
     * Every key's latest entry (deleted ones as `DEL`) in revision order, then every later write as it happens, in
     * revision order. Nothing arrives within the writer's call.
     */
    watch(options?: WatchOptions): Promise<BusWatch>;
}

export interface WatchOptions {
    /** Only keys matching this NATS subject pattern (default `>`: every key). */
    key?: string;
    /** Only writes made after the watch started: no snapshot of the latest entries. */
    updatesOnly?: boolean;
}

export interface BusEntry {
    key: string;
    value: Uint8Array;
    revision: number;
    operation: 'PUT' | 'DEL';
    /** When this revision was written. */
    created: Date;
}

export interface BusWatch extends AsyncIterable<BusEntry> {
    /** Ends the iteration; safe to call twice. */
    stop(): void;
}

/** A compare-and-set (create, update, delete at a revision) lost: the key is not where the writer read it. */
export class KeyConflict extends Error {
    readonly code = 'KEY_CONFLICT';
}

const encoder = new TextEncoder();

/** NATS subject matching, for subjects and keys alike: `*` is one token, a final `>` one or more. */
export function subjectMatches(pattern: string, subject: string): boolean {
    if (pattern === '>') return subject.length > 0;
    const wanted = pattern.split('.');
    const tokens = subject.split('.');
    for (let i = 0; i < wanted.length; i++) {
        if (wanted[i] === '>') return i === wanted.length - 1 && tokens.length > i;
        if (i >= tokens.length || (wanted[i] !== '*' && wanted[i] !== tokens[i])) return false;
    }
    return wanted.length === tokens.length;
}

export function bytesOf(data: Uint8Array | string): Uint8Array {
    return typeof data === 'string' ? encoder.encode(data) : data;
}
