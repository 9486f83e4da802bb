import { deserializeFunction, serializeFunction, Type, validateFunction, ValidationError } from '@deepkit/type';
import { Observable, Subject } from 'rxjs';
import * as Y from 'yjs';
import { PayloadTooLarge, QuotaExceeded } from '@switchboard/protocol';
import { boundedValidationError } from '@switchboard/protocol/internal';

/** The Y.Doc root type that holds a map's entries. */
export const ROOT = 'entries';

export interface StateLimits {
    /**
     * Largest map, in bytes (default 1 MiB, which fits any broker): keys and JSON-serialized values, plus about 10
     * bytes per overwritten or deleted value (Yjs keeps a tombstone of each, so concurrent writes resolve alike).
     */
    maxBytes: number;
    /** Longest key, in characters (default 256). */
    maxKeyLength: number;
}

export const defaultStateLimits: StateLimits = { maxBytes: 1024 * 1024, maxKeyLength: 256 };

/** What an overwritten value costs the document (a Yjs tombstone), measured: about 9 bytes. */
const TOMBSTONE_BYTES = 10;

/** One change of a map, local or remote, after it is applied. */
export interface MapChange<T> {
    key: string;
    action: 'add' | 'update' | 'delete';
    /** The new value (absent for `delete`). */
    value?: T;
    /** `local` for this peer's own writes, else the ID of the member the change came from. */
    by: string;
}

/** A change applied on behalf of a member: stored, not sent back. */
export class RemoteOrigin {
    constructor(readonly peerId: string) {
    }
}

/** Changes applied from this peer's storage: neither stored again nor sent. */
export const LOADED = Symbol('loaded');

/**
 * A map replicated among its members: a Yjs `Y.Map` underneath (a CRDT), so concurrent writes to the same key
 * resolve to the same value on every member, whatever order the updates arrive in. Values are checked against the
 * map's type on every write, local or remote, and stored in their JSON form (Deepkit's serializer: dates and the
 * like survive the trip).
 *
 * ```ts
 * const room = await peer.features.state.open<RoomSettings>('room-42', { members: ['bob', 'carol'] });
 * room.set('topic', { text: 'Release', by: 'alice' });
 * room.changes$.subscribe(change => render(change.key, change.value));
 * ```
 */
export class ReplicatedMap<T> {
    readonly doc = new Y.Doc();
    /** Every change after it is applied (local writes included). */
    readonly changes$: Observable<MapChange<T>>;
    protected readonly entriesMap: Y.Map<unknown>;
    protected readonly changesSubject = new Subject<MapChange<T>>();
    protected readonly toStored: (value: T) => unknown;
    protected readonly fromStored: (stored: unknown) => T;
    protected readonly validator: (value: unknown) => { path: string, code: string, message: string }[];
    /** Bytes per key (key plus JSON value), kept up to date by every change so a write is checked in O(1). */
    protected sizes = new Map<string, number>();
    protected bytes = 0;
    /** Tombstones of overwritten and deleted values: measured once when loaded, then estimated per change. */
    protected historyBytes = 0;

    constructor(readonly name: string, readonly members: ReadonlySet<string>, readonly type: Type, readonly limits: StateLimits) {
        this.entriesMap = this.doc.getMap(ROOT);
        this.changes$ = this.changesSubject.asObservable();
        this.toStored = serializeFunction(undefined, undefined, type);
        this.fromStored = deserializeFunction(undefined, undefined, type);
        this.validator = validateFunction(undefined, type);
        this.entriesMap.observe((event, transaction) => {
            const origin = transaction.origin;
            const by = origin instanceof RemoteOrigin ? origin.peerId : origin === LOADED ? 'storage' : 'local';
            for (const [key, { action }] of event.changes.keys) {
                this.measure(key);
                if (action !== 'add') this.historyBytes += TOMBSTONE_BYTES;
                this.changesSubject.next(action === 'delete' ? { key, action, by } : { key, action, value: this.get(key), by });
            }
        });
    }

    get(key: string): T | undefined {
        const stored = this.entriesMap.get(key);
        return stored === undefined ? undefined : this.fromStored(stored);
    }

    has(key: string): boolean {
        return this.entriesMap.has(key);
    }

    /**
     * Writes `value` under `key` and sends it to the members (those offline get it when they are back). Throws
     * ValidationError for a value that does not fit the map's type, QuotaExceeded when the map would grow past
     * `maxBytes`, PayloadTooLarge for a key longer than `maxKeyLength`.
     */
    set(key: string, value: T): this {
        if (key.length > this.limits.maxKeyLength) {
            throw new PayloadTooLarge(`A key of ${key.length} characters exceeds this map's limit of ${this.limits.maxKeyLength}. Use shorter keys.`, key.length, this.limits.maxKeyLength);
        }
        const errors = this.validator(value);
        if (errors.length) throw boundedValidationError(new ValidationError(errors as any, this.type));
        const stored = this.toStored(value);
        const size = entrySize(key, stored);
        const previous = this.sizes.get(key);
        const after = this.byteSize - (previous ?? 0) + size + (previous === undefined ? 0 : TOMBSTONE_BYTES);
        if (after > this.limits.maxBytes) {
            throw new QuotaExceeded(
                `Map "${this.name}" would hold ${after} bytes (${this.historyBytes} of them tombstones of overwritten values), more than its limit of ` +
                `${this.limits.maxBytes}. Delete entries, or open it with a larger maxBytes; keep often-rewritten values in few keys.`,
                this.limits.maxBytes,
            );
        }
        this.entriesMap.set(key, stored);
        return this;
    }

    delete(key: string): boolean {
        if (!this.entriesMap.has(key)) return false;
        this.entriesMap.delete(key);
        return true;
    }

    keys(): string[] {
        return [...this.entriesMap.keys()].sort();
    }

    /** Every entry, sorted by key (the same order on every member). */
    entries(): [string, T][] {
        return this.keys().map(key => [key, this.get(key)!]);
    }

    get size(): number {
        return this.entriesMap.size;
    }

    /** Bytes the map holds (keys, JSON values and tombstones), as counted against `maxBytes`. */
    get byteSize(): number {
        return this.bytes + this.historyBytes;
    }

    /** @internal After loading from storage: the tombstones measured exactly, once. */
    measureHistory(): void {
        this.historyBytes = Math.max(0, Y.encodeStateAsUpdate(this.doc).byteLength - this.bytes);
    }

    toJSON(): Record<string, T> {
        return Object.fromEntries(this.entries());
    }

    /** Several writes as one update (one message to each member, one row in storage). */
    transact(work: () => void): void {
        this.doc.transact(work);
    }

    /**
     * Hex SHA-256 of the map's Yjs snapshot (state vector and delete set, both encoded in a fixed order): two members
     * with the same hash hold the same map.
     */
    async hash(): Promise<string> {
        const digest = await globalThis.crypto.subtle.digest('SHA-256', Y.encodeSnapshot(Y.snapshot(this.doc)) as Uint8Array<ArrayBuffer>);
        return Array.from(new Uint8Array(digest), byte => byte.toString(16).padStart(2, '0')).join('');
    }

    /** Throws when a value stored by a member does not fit the map's type (used on remote updates). */
    checkStored(stored: unknown): void {
        const value = this.fromStored(stored);
        const errors = this.validator(value);
        if (errors.length) throw boundedValidationError(new ValidationError(errors as any, this.type));
    }

    /** @internal Ends `changes$` when the peer closes. */
    close(): void {
        this.changesSubject.complete();
        this.doc.destroy();
    }

    protected measure(key: string): void {
        this.bytes -= this.sizes.get(key) ?? 0;
        const stored = this.entriesMap.get(key);
        if (stored === undefined) {
            this.sizes.delete(key);
            return;
        }
        const size = entrySize(key, stored);
        this.sizes.set(key, size);
        this.bytes += size;
    }
}

function entrySize(key: string, stored: unknown): number {
    return key.length + (JSON.stringify(stored)?.length ?? 0);
}
