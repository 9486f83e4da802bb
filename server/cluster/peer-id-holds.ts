import { LoggerInterface } from '@deepkit/logger';
import { PeerIdTaken } from '@switchboard/protocol';
import { HeldPeerIds } from '../exchange/held-peer-ids';
import { PeerOwner, RegisterOptions } from '../exchange/peer-exchange';
import { ClusterNames, peerKey } from './cluster-names';
import { DirectoryEntry, sameOwner } from './directory-entry';
import { BusKeyValue, ClusterBus } from './bus/cluster-bus';

/** Key of a hold in the cluster's holds bucket: the peer's directory key. */
function holdKey(peerId: string): string {
    return peerKey(peerId);
}

const decoder = new TextDecoder();

/** How long a registration waits for the hold store before it goes on without it. */
const READ_MS = 2_000;

async function within<T>(work: Promise<T> | undefined, ms: number): Promise<T | 'timeout'> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'timeout'>(resolve => timer = setTimeout(() => resolve('timeout'), ms));
    try {
        return await Promise.race([work ?? Promise.resolve(undefined as T), late]);
    } finally {
        clearTimeout(timer);
    }
}

interface StoredHold {
    /** Held until, milliseconds since the epoch. */
    u: number;
    o: string;
    h?: string;
}

/**
 * The grace hold of peer IDs across a cluster: when a connection is lost without a deregister, its broker writes a
 * hold (owner, until) in a bucket of their own (`<bucket>_holds`: the directory's watch and revisions stay the
 * directory's), before the entry's delete, so no broker hands the ID to anyone but its owner within the grace period. A registration of an ID that is not live reads the hold first. nats-server 2.9
 * ignores per-key TTLs, so a hold carries its end and the broker that wrote it deletes it then (an expired hold left
 * by a broker that died counts for nothing and is overwritten by the next).
 */
export class ClusterPeerIdHolds {
    /** Holds this broker wrote, for the synchronous answers (ownerOf, heldUntil). */
    protected local = new HeldPeerIds();
    /** connectionId → grace period of the ID it registered. */
    protected graces = new Map<string, number>();
    protected timers = new Set<ReturnType<typeof setTimeout>>();
    /** Hold writes on the way, by peer ID: a registration on this broker waits for them. */
    protected writing = new Map<string, Promise<void>>();
    protected kv?: Promise<BusKeyValue>;

    constructor(protected bus: ClusterBus, protected names: ClusterNames, protected logger: LoggerInterface) {
    }

    /** A registration of `connectionId` succeeded: remember its grace period. */
    registered(connectionId: string, options: RegisterOptions): void {
        if (options.graceMs) this.graces.set(connectionId, options.graceMs);
    }

    forget(connectionId: string): void {
        this.graces.delete(connectionId);
    }

    /** The connection holding `entry` was lost: hold its ID for its owner. */
    lost(entry: DirectoryEntry): void {
        const graceMs = this.graces.get(entry.connectionId) ?? 0;
        this.graces.delete(entry.connectionId);
        if (!graceMs) return;
        const until = this.local.hold(entry.peerId, entry.owner, graceMs).getTime();
        // Cut off from NATS, the hold stays local: nothing is queued to land late.
        if (!this.bus.connected) return;
        const stored: StoredHold = { u: until, o: entry.owner.session, h: entry.owner.reclaimSecretHash };
        const key = holdKey(entry.peerId);
        const written = this.store().then(async kv => {
            const revision = await kv.put(key, JSON.stringify(stored));
            const timer = setTimeout(() => {
                this.timers.delete(timer);
                // Only the hold written here: a newer one (the owner lost a later connection) stays.
                void kv.delete(key, revision).catch(() => undefined);
            }, graceMs);
            timer.unref?.();
            this.timers.add(timer);
        }).catch(error => this.logger.warn(`Cluster: could not hold peer ID "${entry.peerId}" for its owner`, (error as Error).message)).finally(() => {
            if (this.writing.get(entry.peerId) === written) this.writing.delete(entry.peerId);
        });
        this.writing.set(entry.peerId, written);
    }

    /**
     * Refuses a registration of a held ID to anyone but its owner (`takeover`); the owner's registration ends the hold.
     * Cut off from NATS, only this broker's own holds count (a registration then is decided locally, as the
     * directory's is); a store that does not answer within READ_MS holds nothing.
     */
    async assertFree(peerId: string, options: RegisterOptions): Promise<void> {
        if (!this.bus.connected) {
            const local = this.local.until(peerId);
            if (local && !options.takeover && !sameOwner(this.local.ownerOf(peerId)!, options.claimant)) throw PeerIdTaken.held(peerId, local);
            return;
        }
        await within(this.writing.get(peerId), READ_MS);
        const key = holdKey(peerId);
        let kv: BusKeyValue;
        let stored: StoredHold | undefined;
        try {
            kv = await this.store();
            const entry = await within(kv.get(key), READ_MS);
            if (entry === 'timeout') return;
            if (!entry || entry.operation !== 'PUT') return this.local.release(peerId);
            stored = JSON.parse(decoder.decode(entry.value)) as StoredHold;
        } catch {
            return;
        }
        if (typeof stored?.u !== 'number' || stored.u <= Date.now()) return;
        const owner: PeerOwner = { session: String(stored.o), reclaimSecretHash: typeof stored.h === 'string' ? stored.h : undefined };
        if (!options.takeover && !sameOwner(owner, options.claimant)) throw PeerIdTaken.held(peerId, new Date(stored.u));
        this.local.release(peerId);
        await kv.delete(key).catch(() => undefined);
    }

    ownerOf(peerId: string): PeerOwner | undefined {
        return this.local.ownerOf(peerId);
    }

    /** The ID is online again somewhere in the cluster: a hold this broker made is over. */
    online(peerId: string): void {
        this.local.release(peerId);
    }

    heldUntil(peerId: string): Date | undefined {
        return this.local.until(peerId);
    }

    stop(): void {
        for (const timer of this.timers) clearTimeout(timer);
        this.timers.clear();
        this.local.clear();
        this.graces.clear();
    }

    protected store(): Promise<BusKeyValue> {
        this.kv ??= this.bus.keyValue(`${this.names.bucket}_holds`, { maxValueSize: 1024 });
        this.kv.catch(() => this.kv = undefined);
        return this.kv;
    }
}
