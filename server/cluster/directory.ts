import { LoggerInterface } from '@deepkit/logger';
import { ExchangePresence } from '../exchange/peer-exchange';
import { ClusterNames, PEER_KEY_PREFIX, peerIdOfKey, peerKey, probeKey } from './cluster-names';
import { decodeEntry, DirectoryEntry, encodeEntry } from './directory-entry';
import { DirectoryPresence } from './directory-presence';
import { BusEntry, BusKeyValue, BusWatch, ClusterBus } from './bus/cluster-bus';

/** What the exchange hears from the directory. */
export interface DirectoryListener {
    /** The watch moved a peer ID (another broker's write, a takeover, a reap); `next` undefined: it went offline. */
    moved(peerId: string, previous: DirectoryEntry | undefined, next: DirectoryEntry | undefined): void;
    /** Presence, in the watch's order: the KV's revision order, the same on every broker. */
    presence(event: ExchangePresence): void;
    /** A (re)built watch has caught up with the bucket. */
    synced(): void;
}

/** The directory (a KV bucket of the cluster bus) is out of reach: the bus is down, or the bucket is being rebuilt. */
export class DirectoryUnavailable extends Error {
}

const decoder = new TextDecoder();

/**
 * The cluster's peer directory: a KV bucket of the cluster bus per cluster (JetStream KV on NATS; peer ID →
 * DirectoryEntry) and this broker's view of it, fed by ONE watch that only moves forward by revision.
 *
 * Two views, on purpose: `entries` answers routing and is updated at once by this broker's own writes (a peer that
 * just registered is routable the moment register resolves), while presence comes from the watch alone, so every
 * broker reports the same events in the same order.
 *
 * Writes to one key run one after another (`serial`): a delete needs the revision of the write before it.
 */
export class Directory {
    /** The routing view. */
    readonly entries = new Map<string, DirectoryEntry>();
    /** After a local delete: watch events at or below this revision are older than what this broker knows. */
    protected floors = new Map<string, number>();
    /** After a rebuild: entries the new watch has not confirmed yet (the store may have been emptied). */
    protected unconfirmed = new Set<string>();
    /** The presence view (server/cluster/directory-presence.ts). */
    protected readonly presence = new DirectoryPresence(event => this.listener.presence(event), () => this.closed);
    protected chains = new Map<string, Promise<unknown>>();
    protected pending = new Set<Promise<unknown>>();
    protected kv?: BusKeyValue;
    protected watcher?: BusWatch;
    protected generation = 0;
    protected rebuilding?: Promise<void>;
    /** Probe values: the last written, the last the watch showed, the one ending the current sync. */
    protected probeWritten = 0;
    protected probeSeen = 0;
    protected syncUntil = 0;
    /** Peer IDs the current sync's snapshot showed. */
    protected seen?: Set<string>;
    protected closed = false;
    protected settleWaiters: (() => void)[] = [];
    /** The highest revision the current watch has shown: older events cannot come any more. */
    protected lastWatched = 0;

    constructor(
        protected bus: ClusterBus,
        protected names: ClusterNames,
        protected brokerId: string,
        protected listener: DirectoryListener,
        protected logger: LoggerInterface,
        protected syncTimeoutMs: number,
    ) {
    }

    get ready(): boolean {
        return !!this.kv && !this.rebuilding && this.bus.connected;
    }

    /**
     * Creates (or binds) the bucket, starts a fresh watch, and resolves once the watch has caught up.
     * @param beforeSync writes this broker's own entries again; run before the snapshot ends, so that an emptied store
     *   does not show this broker's peers going offline and coming back
     */
    rebuild(beforeSync?: () => Promise<void>): Promise<void> {
        if (this.rebuilding) return this.rebuilding;
        this.rebuilding = this.build(beforeSync).finally(() => this.rebuilding = undefined);
        return this.rebuilding;
    }

    protected async build(beforeSync?: () => Promise<void>): Promise<void> {
        const generation = ++this.generation;
        this.watcher?.stop();
        this.watcher = undefined;
        this.kv = await this.bus.keyValue(this.names.bucket, { maxValueSize: 64 * 1024 });
        if (generation !== this.generation || this.closed) return;
        this.unconfirmed = new Set(this.entries.keys());
        this.floors.clear();
        this.lastWatched = 0;
        this.seen = new Set();
        // Until the marker probe is written, no probe ends the snapshot (the snapshot shows the last one written).
        this.syncUntil = Number.POSITIVE_INFINITY;
        const synced = new Promise<void>(resolve => this.settleWaiters.push(resolve));
        const watcher = await this.kv.watch();
        this.watcher = watcher;
        void this.follow(watcher, generation);
        await beforeSync?.();
        // A probe written after the watch started (and after this broker's own entries) marks the snapshot's end.
        this.syncUntil = this.probeWritten + 1;
        await this.writeProbe();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<never>((_, reject) => timer = setTimeout(() => reject(new DirectoryUnavailable('The cluster directory watch did not catch up in time.')), this.syncTimeoutMs));
        try {
            await Promise.race([synced, late]);
        } finally {
            clearTimeout(timer);
        }
    }

    /** Writes this broker's probe; the watch must show it soon, else it stalled (see `stalled`). */
    async writeProbe(): Promise<void> {
        const value = ++this.probeWritten;
        await this.store().put(probeKey(this.brokerId), String(value));
    }

    /** Probes written at least `lag` probes ago that the watch never showed: it stalled silently. */
    stalled(lag: number): boolean {
        return this.probeWritten - this.probeSeen > lag;
    }

    // ---- writes (each inside `serial` for its key) ------------------------------------------------------------

    async create(entry: DirectoryEntry): Promise<void> {
        entry.revision = await this.store().create(peerKey(entry.peerId), encodeEntry(entry));
        this.applyLocal(entry);
    }

    /** @param apply false: the ID was released meanwhile, and the routing view must not show it again */
    async update(entry: DirectoryEntry, previousRevision: number, apply = true): Promise<void> {
        entry.revision = await this.store().update(peerKey(entry.peerId), encodeEntry(entry), previousRevision);
        if (apply) this.applyLocal(entry);
    }

    /** Deletes the entry only if it is still at `revision`: never a newer owner's. */
    async remove(peerId: string, revision: number): Promise<void> {
        await this.store().delete(peerKey(peerId), revision);
    }

    async fetch(peerId: string): Promise<DirectoryEntry | undefined> {
        const stored = await this.store().get(peerKey(peerId));
        if (!stored || stored.operation !== 'PUT') return undefined;
        return decodeEntry(peerId, stored.value, stored.revision);
    }

    /** Creates `key` if absent: exactly one caller wins. */
    async claim(key: string, value: string): Promise<boolean> {
        try {
            await this.store().create(key, value);
            return true;
        } catch {
            return false;
        }
    }

    async readKey(key: string): Promise<{ value: string, revision: number, created: Date } | undefined> {
        const stored = await this.store().get(key);
        if (!stored || stored.operation !== 'PUT') return undefined;
        return { value: decoder.decode(stored.value), revision: stored.revision, created: stored.created };
    }

    async deleteKey(key: string, revision?: number): Promise<void> {
        await this.store().delete(key, revision);
    }

    /** Runs `operation` after every earlier operation on the same peer ID, whatever their outcome. */
    serial<T>(peerId: string, operation: () => Promise<T>): Promise<T> {
        const previous = this.chains.get(peerId) ?? Promise.resolve();
        const result = previous.then(operation, operation);
        const tail = result.then(() => undefined, () => undefined);
        this.chains.set(peerId, tail);
        this.pending.add(tail);
        void tail.then(() => {
            this.pending.delete(tail);
            if (this.chains.get(peerId) === tail) this.chains.delete(peerId);
        });
        return result;
    }

    /** Resolves when every write queued so far has ended. */
    async drain(): Promise<void> {
        while (this.pending.size) await Promise.all([...this.pending]);
    }

    /** Resolves when every write so far ended and the watch showed everything before a new probe. */
    async settled(): Promise<void> {
        await this.drain();
        const target = this.probeWritten + 1;
        const reached = new Promise<void>(resolve => this.probeWaiters.push({ target, resolve }));
        await this.writeProbe();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<never>((_, reject) => timer = setTimeout(() => reject(new DirectoryUnavailable('The cluster directory watch did not show the probe in time.')), this.syncTimeoutMs));
        try {
            await Promise.race([reached, late]);
        } finally {
            clearTimeout(timer);
        }
    }

    protected probeWaiters: { target: number, resolve: () => void }[] = [];

    // ---- the routing view ------------------------------------------------------------------------------------

    /** This broker's own write, applied at once (the watch brings the same revision later and is ignored then). */
    applyLocal(entry: DirectoryEntry): void {
        const current = this.entries.get(entry.peerId);
        if (current && !this.unconfirmed.has(entry.peerId) && current.revision >= entry.revision) return;
        this.unconfirmed.delete(entry.peerId);
        this.floors.delete(entry.peerId);
        this.entries.set(entry.peerId, entry);
    }

    /** A claim decided during a NATS outage (revision 0): routable here at once, whatever this view held before. */
    setLocal(entry: DirectoryEntry): void {
        this.unconfirmed.delete(entry.peerId);
        this.floors.delete(entry.peerId);
        this.entries.set(entry.peerId, entry);
    }

    /** This broker released the ID: it is unroutable at once, whatever the watch still has on the way. */
    forgetLocal(entry: DirectoryEntry): void {
        if (this.entries.get(entry.peerId)?.connectionId !== entry.connectionId) return;
        this.entries.delete(entry.peerId);
        this.unconfirmed.delete(entry.peerId);
        this.floors.set(entry.peerId, entry.revision);
    }

    /** Floors the watch has moved past protect nothing any more; without this they would grow with every ID released. */
    prune(): void {
        for (const [peerId, revision] of this.floors) {
            if (revision <= this.lastWatched) this.floors.delete(peerId);
        }
    }

    async close(): Promise<void> {
        this.closed = true;
        this.generation++;
        this.watcher?.stop();
        this.watcher = undefined;
        for (const resolve of this.settleWaiters.splice(0)) resolve();
        for (const { resolve } of this.probeWaiters.splice(0)) resolve();
    }

    // ---- the watch -------------------------------------------------------------------------------------------

    protected store(): BusKeyValue {
        if (!this.kv || !this.bus.connected || this.closed) throw new DirectoryUnavailable('The cluster directory (NATS JetStream) is out of reach.');
        return this.kv;
    }

    protected async follow(watcher: BusWatch, generation: number): Promise<void> {
        try {
            for await (const update of watcher) {
                if (generation !== this.generation) return;
                this.onWatch(update);
            }
        } catch (error) {
            if (generation === this.generation && !this.closed) this.logger.warn('Cluster directory watch ended', (error as Error).message);
        }
    }

    protected onWatch(update: BusEntry): void {
        const key = update.key;
        if (update.revision > this.lastWatched) this.lastWatched = update.revision;
        if (key.startsWith(PEER_KEY_PREFIX)) {
            const peerId = peerIdOfKey(key);
            if (update.operation === 'PUT') {
                const entry = decodeEntry(peerId, update.value, update.revision);
                if (entry) this.watchedPut(entry, update.created);
            } else {
                this.watchedDelete(peerId, update.revision, update.created);
            }
        } else if (key === probeKey(this.brokerId)) {
            const value = Number(decoder.decode(update.value));
            if (!Number.isSafeInteger(value)) return;
            this.probeSeen = Math.max(this.probeSeen, value);
            if (this.seen && value >= this.syncUntil) this.finishSync();
            if (this.probeWaiters.length) {
                const waiting = this.probeWaiters;
                this.probeWaiters = [];
                for (const waiter of waiting) {
                    if (value >= waiter.target) waiter.resolve();
                    else this.probeWaiters.push(waiter);
                }
            }
        }
        // Other keys (other brokers' probes, reaper locks) carry nothing for the views.
    }

    protected watchedPut(entry: DirectoryEntry, at: Date): void {
        const peerId = entry.peerId;
        this.seen?.add(peerId);
        const current = this.entries.get(peerId);
        const floor = this.unconfirmed.has(peerId) ? -1 : current ? current.revision : this.floors.get(peerId) ?? 0;
        // A claim made during an outage is settled by reconciling (a compare-and-set), not by what the watch shows first.
        if (entry.revision > floor && current?.pendingBase === undefined) {
            this.unconfirmed.delete(peerId);
            this.floors.delete(peerId);
            this.entries.set(peerId, entry);
            if (!current || current.connectionId !== entry.connectionId) this.listener.moved(peerId, current, entry);
        }
        this.presence.put(entry, at, !!this.seen);
    }

    protected watchedDelete(peerId: string, revision: number, at: Date): void {
        const current = this.entries.get(peerId);
        if (current && current.pendingBase === undefined && (this.unconfirmed.has(peerId) || current.revision < revision)) {
            this.entries.delete(peerId);
            this.unconfirmed.delete(peerId);
            this.listener.moved(peerId, current, undefined);
        }
        if (!this.entries.has(peerId)) this.floors.set(peerId, Math.max(revision, this.floors.get(peerId) ?? 0));
        this.presence.delete(peerId, at);
    }

    /** The snapshot is complete: whatever it did not show is gone (the store was emptied, or entries were reaped). */
    protected finishSync(): void {
        const seen = this.seen!;
        this.seen = undefined;
        this.presence.sweep(seen, new Date);
        for (const peerId of [...this.unconfirmed]) {
            const current = this.entries.get(peerId);
            this.entries.delete(peerId);
            this.unconfirmed.delete(peerId);
            if (current) this.listener.moved(peerId, current, undefined);
        }
        for (const resolve of this.settleWaiters.splice(0)) resolve();
        this.listener.synced();
    }
}
