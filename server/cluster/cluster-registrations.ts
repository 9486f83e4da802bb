import { ClusterUnavailable, PeerIdTaken } from '@switchboard/protocol';
import { RegisterOptions } from '../exchange/peer-exchange';
import { ClusterContext } from './cluster-context';
import { DirectoryUnavailable } from './directory';
import { DirectoryEntry, isConflict, sameOwner } from './directory-entry';
import { ClusterPeerIdHolds } from './peer-id-holds';

/**
 * A second compare-and-set lost too: another claim of the ID (its owner's other connection, reclaiming it at the same
 * moment through another broker) came between the re-read and the write. The caller hears PeerIdTaken, not an
 * internal error; registering again takes the ID back.
 */
function lostRace(peerId: string, error: unknown): never {
    if (!isConflict(error)) throw error;
    throw new PeerIdTaken(`Peer ID "${peerId}" was claimed by another connection at the same moment (its owner's, reclaiming it through another broker). Register again to take it back, or pick another ID.`, peerId);
}

/**
 * The peer IDs held by this broker's connections, kept in the cluster's directory (server/cluster/directory.ts).
 * Register = KV create (one winner), takeover = update at the revision read, release = delete at the revision written
 * (never a newer owner's). While NATS is out of reach, claims are decided locally and written when it is back
 * (`reassert`); a conflict found then is lost like a takeover.
 */
export class ClusterRegistrations {
    /** connectionId → this broker's directory entry for the peer ID it holds. */
    readonly held = new Map<string, DirectoryEntry>();
    /** peerId → connectionId, of the IDs held here. */
    readonly localPeers = new Map<string, string>();
    /** IDs released while NATS was out of reach: deleted when it is back, if the store still names that connection. */
    protected owedReleases = new Map<string, DirectoryEntry>();

    constructor(protected context: ClusterContext, protected holds: ClusterPeerIdHolds) {
    }

    protected get directory() {
        return this.context.directory;
    }

    async register(peerId: string, connectionId: string, options: RegisterOptions = {}): Promise<void> {
        if (this.held.get(connectionId)?.peerId === peerId) return;
        try {
            if (!this.directory.entries.has(peerId)) await this.holds.assertFree(peerId, options);
            await this.directory.serial(peerId, () => this.claim(peerId, connectionId, options));
            this.holds.registered(connectionId, options);
        } catch (error) {
            if (error instanceof DirectoryUnavailable) throw new ClusterUnavailable(`Peer ID "${peerId}" could not be registered: this broker's view of the cluster directory (NATS) is being rebuilt. Retry in a moment, or connect to another broker.`, peerId, 'directory');
            throw error;
        }
    }

    protected async claim(peerId: string, connectionId: string, options: RegisterOptions): Promise<void> {
        const current = this.directory.entries.get(peerId);
        if (current?.connectionId === connectionId) return;
        const entry: DirectoryEntry = { peerId, brokerId: this.context.brokerId, connectionId, since: Date.now(), owner: options.owner ?? { session: '' }, capabilities: [], revision: 0 };
        try {
            await this.write(entry, current, options);
        } catch (error) {
            if (!(error instanceof DirectoryUnavailable) || this.context.bus.connected) throw error;
            // NATS went away under the write (it may have landed: reconciling looks at the store first).
            this.claimLocally(entry, current, options);
        }
        if (!this.context.endpoints.has(connectionId)) {
            // The connection closed while its registration was on the way.
            this.directory.forgetLocal(entry);
            if (entry.pendingBase === undefined) await this.directory.remove(peerId, entry.revision).catch(() => undefined);
            return;
        }
        this.held.set(connectionId, entry);
        this.localPeers.set(peerId, connectionId);
        // The watch may have shown a newer owner before this write's answer came (another broker's takeover right
        // after it): then this claim is already lost, and its connection hears so like any replaced one.
        const now = this.directory.entries.get(peerId);
        if (now && now !== entry && now.connectionId !== connectionId && now.revision > entry.revision) setImmediate(() => this.lose(connectionId, peerId));
    }

    protected async write(entry: DirectoryEntry, current: DirectoryEntry | undefined, options: RegisterOptions): Promise<void> {
        const peerId = entry.peerId;
        if (!this.context.bus.connected) return this.claimLocally(entry, current, options);
        if (!current) {
            try {
                await this.directory.create(entry);
            } catch (error) {
                if (!isConflict(error)) throw error;
                // The local view was behind: someone registered it a moment ago.
                const fresh = await this.directory.fetch(peerId);
                if (fresh) await this.takeOver(entry, fresh, options);
                else await this.directory.create(entry).catch(error => lostRace(peerId, error));
            }
        } else {
            await this.takeOver(entry, current, options);
        }
    }

    /**
     * A registration while NATS is out of reach is decided by this broker's view, by the same rules as online, and
     * written when NATS is back (reassert): peers keep (re)connecting to a broker cut off from its cluster, and calls
     * between them go on. A conflicting claim made elsewhere meanwhile is resolved by the store's compare-and-set, so
     * every broker ends with the same holder; the loser's connection is told PeerReplaced.
     */
    protected claimLocally(entry: DirectoryEntry, current: DirectoryEntry | undefined, options: RegisterOptions): void {
        if (current && (!options.takeover || (options.owner && !sameOwner(current.owner, options.owner)))) throw PeerIdTaken.for(entry.peerId);
        entry.revision = 0;
        entry.pendingBase = current ? current.pendingBase ?? current.revision : 0;
        this.directory.setLocal(entry);
        if (current?.brokerId === this.context.brokerId) this.lose(current.connectionId, entry.peerId);
    }

    /** Replaces a live registration, if the caller proved ownership; the compare-and-set makes a stale view lose. */
    protected async takeOver(entry: DirectoryEntry, current: DirectoryEntry, options: RegisterOptions): Promise<void> {
        if (!options.takeover || (options.owner && !sameOwner(current.owner, options.owner))) throw PeerIdTaken.for(entry.peerId);
        try {
            await this.directory.update(entry, current.revision);
        } catch (error) {
            if (!isConflict(error)) throw error;
            const fresh = await this.directory.fetch(entry.peerId);
            if (!fresh) return this.directory.create(entry).catch(error => lostRace(entry.peerId, error));
            if (!options.owner || !sameOwner(fresh.owner, options.owner)) throw PeerIdTaken.for(entry.peerId);
            await this.directory.update(entry, fresh.revision).catch(error => lostRace(entry.peerId, error));
            current = fresh;
        }
        if (current.brokerId === this.context.brokerId) this.lose(current.connectionId, entry.peerId);
    }

    deregister(peerId: string, connectionId: string): Promise<void> {
        const entry = this.held.get(connectionId);
        if (!entry || entry.peerId !== peerId) return Promise.resolve();
        return this.release(entry);
    }

    /** Unroutable at once; the directory entry is deleted behind, at the revision this broker wrote last. */
    release(entry: DirectoryEntry): Promise<void> {
        this.held.delete(entry.connectionId);
        if (this.localPeers.get(entry.peerId) === entry.connectionId) this.localPeers.delete(entry.peerId);
        this.directory.forgetLocal(entry);
        if (entry.pendingBase !== undefined) return Promise.resolve(); // never written
        return this.directory.serial(entry.peerId, () => this.directory.remove(entry.peerId, entry.revision)).catch(error => {
            // A newer owner's entry stays; an unreachable directory is cleaned up when NATS is back (reassert).
            if (error instanceof DirectoryUnavailable) this.owedReleases.set(entry.peerId, entry);
            else if (!isConflict(error)) this.context.logger.warn(`Cluster: could not release peer ID "${entry.peerId}"`, (error as Error).message);
        });
    }

    /** A registration held here was taken by another connection: tell its endpoint (it closes as replaced). */
    protected lose(connectionId: string, peerId: string): void {
        const entry = this.held.get(connectionId);
        if (!entry || entry.peerId !== peerId) return;
        this.held.delete(connectionId);
        if (this.localPeers.get(peerId) === connectionId) this.localPeers.delete(peerId);
        this.context.endpoints.get(connectionId)?.replaced(peerId);
    }

    /** The watch moved an ID away from what this broker believed. */
    moved(peerId: string, previous: DirectoryEntry | undefined, next: DirectoryEntry | undefined): void {
        if (previous?.brokerId !== this.context.brokerId) return;
        const entry = this.held.get(previous.connectionId);
        if (!entry || entry.peerId !== peerId) return;
        if (next) return this.lose(previous.connectionId, peerId);
        // Deleted under a live connection (a reaper thought this broker dead, or the store was emptied): claim it back.
        void this.directory.serial(peerId, async () => {
            if (this.held.get(entry.connectionId) !== entry) return;
            try {
                await this.directory.create(entry);
            } catch (error) {
                if (isConflict(error)) this.lose(entry.connectionId, peerId);
                else this.context.needsRecovery = true;
            }
        }).catch(() => undefined);
    }

    announce(peerId: string, capabilities: string[]): void {
        const connectionId = this.localPeers.get(peerId);
        const entry = connectionId && this.held.get(connectionId);
        if (!entry) return;
        // Written even if the ID is released before its turn comes (presence then shows it, as on one broker); the
        // release deletes at the revision this write makes.
        void this.directory.serial(peerId, async () => {
            const next = { ...entry, capabilities };
            await this.directory.update(next, entry.revision, this.held.get(entry.connectionId) === entry);
            entry.capabilities = capabilities;
            entry.revision = next.revision;
        }).catch(error => this.context.logger.warn(`Cluster: could not announce the capabilities of "${peerId}"`, (error as Error).message));
    }

    /** This broker's registrations written again after the directory was rebuilt (a restart, NATS back). */
    async reassert(): Promise<void> {
        const work: Promise<unknown>[] = [];
        for (const entry of this.held.values()) work.push(this.directory.serial(entry.peerId, () => this.reassertOne(entry)));
        for (const [peerId, entry] of this.owedReleases) {
            this.owedReleases.delete(peerId);
            work.push(this.directory.serial(peerId, async () => {
                const fresh = await this.directory.fetch(peerId);
                if (fresh?.connectionId === entry.connectionId) await this.directory.remove(peerId, fresh.revision);
            }).catch(() => undefined));
        }
        // Entries of connections that closed while the directory was out of reach.
        for (const entry of [...this.directory.entries.values()]) {
            if (entry.brokerId !== this.context.brokerId || entry.pendingBase !== undefined || this.held.get(entry.connectionId)?.peerId === entry.peerId) continue;
            this.directory.forgetLocal(entry);
            work.push(this.directory.serial(entry.peerId, () => this.directory.remove(entry.peerId, entry.revision)).catch(() => undefined));
        }
        await Promise.all(work);
    }

    /**
     * One ID held here, against the store after NATS was out of reach: kept if the store names its connection;
     * written if the store has nothing (an emptied store, or a reap); a claim made during the outage is written with
     * a compare-and-set on what it replaced, so it stands only if nobody wrote the ID meanwhile. Otherwise lost.
     */
    protected async reassertOne(entry: DirectoryEntry): Promise<void> {
        if (this.held.get(entry.connectionId) !== entry) return;
        const fresh = await this.directory.fetch(entry.peerId);
        if (fresh && fresh.connectionId === entry.connectionId) {
            entry.revision = fresh.revision;
            entry.pendingBase = undefined;
            return this.directory.applyLocal(entry);
        }
        const base = entry.pendingBase;
        if (fresh && (base === undefined || fresh.revision !== base)) return this.lost(entry, fresh);
        try {
            if (fresh) await this.directory.update(entry, fresh.revision);
            else await this.directory.create(entry);
            entry.pendingBase = undefined;
        } catch (error) {
            if (!isConflict(error)) throw error;
            this.lost(entry, await this.directory.fetch(entry.peerId));
        }
    }

    /** Reconciling found another holder of an ID held here: the holder here is replaced, the routing view follows the store. */
    protected lost(entry: DirectoryEntry, winner: DirectoryEntry | undefined): void {
        this.lose(entry.connectionId, entry.peerId);
        if (this.directory.entries.get(entry.peerId) !== entry) return;
        this.directory.forgetLocal(entry);
        if (winner) this.directory.applyLocal(winner);
    }
}
