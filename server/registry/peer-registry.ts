import { LoggerInterface } from '@deepkit/logger';
import { Subject, Subscription } from 'rxjs';
import { PeerFilter, PeerInfo, PresenceEvent } from '@switchboard/protocol';
import { BrokerConfig } from '../config';
import { ExchangePresence, PeerExchange } from '../exchange/peer-exchange';
import { RegistryDatabase } from './database';
import { PeerRecord } from './entities';
import { WriteBehind } from './write-behind';

/** A peer's registry record as the brokers of a cluster share it. */
export interface SharedPeerRecord {
    capabilities: string[];
    firstSeen: Date;
    lastSeen: Date;
    online: boolean;
    owner: string;
    reclaimSecretHash?: string;
    /** The broker that wrote it: the one that held the peer (or noted its holder's death). */
    brokerId: string;
}

/**
 * The registry a cluster shares (server/cluster/cluster-peer-records.ts): what each broker writes of the peers it
 * holds, so a broker that starts later knows the peers it never saw. Without a cluster there is none.
 */
export interface SharedRegistry {
    /** Calls `apply` for every record (this broker's own writes included), and for each write from then on. */
    open(apply: (peerId: string, record: SharedPeerRecord) => void): Promise<void>;
    /** Rate-bounded: the latest record of a peer ID wins. */
    write(peerId: string, record: SharedPeerRecord): void;
    remove(peerIds: string[]): void;
    /** Writes what is pending first. */
    close(): Promise<void>;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** How often peers past the retention period are dropped while the broker runs. */
const RETENTION_SWEEP_MS = 60 * 60 * 1000;
/** Rows deleted in one statement (SQLite limits the parameters of one query). */
const DELETE_BATCH = 500;

/**
 * Every peer ID the broker has seen, with capabilities and first/last seen. Kept in memory for routing decisions
 * (PeerNotFound vs PeerOffline without a query) and written behind to SQLite. Follows the exchange's presence, so
 * in a cluster it also learns of peers on other brokers.
 *
 * Bounded: a peer offline for longer than `registryRetentionDays` is dropped (on start and hourly), and so are the
 * longest-offline peers past `registryMaxOfflinePeers`. Online peers are bounded by the connections, so they stay.
 *
 * In a cluster the history is shared (`shared`): each broker writes the records of the peers it holds, and loads and
 * follows everyone's, so it knows offline peers it never saw with their first seen and capabilities. SQLite stays
 * the local copy.
 */
export class PeerRegistry {
    protected records = new Map<string, PeerRecord>();
    /** IDs of the offline records, in the order they went offline: the longest-offline one is dropped first. */
    protected offline = new Set<string>();
    /** Dropped records whose rows are not deleted yet; a peer that comes back before that keeps its record. */
    protected dropping = new Map<string, PeerRecord>();
    protected deleting?: Promise<void>;
    protected sweepTimer?: ReturnType<typeof setInterval>;
    protected sequence = 0;
    protected subscription?: Subscription;
    protected readonly presenceSubject = new Subject<PresenceEvent>();
    /** Presence changes, numbered in the order this broker saw them. */
    readonly presence = this.presenceSubject.asObservable();
    /** Cluster: the peer IDs this broker holds, whose shared records it writes. */
    protected held = new Set<string>();
    /** Cluster: which broker last wrote each peer's shared record. */
    protected writers = new Map<string, string>();

    constructor(
        protected database: RegistryDatabase,
        protected exchange: PeerExchange,
        protected writer: WriteBehind,
        protected config: BrokerConfig,
        protected logger: LoggerInterface,
        protected shared?: SharedRegistry,
    ) {
    }

    /**
     * Loads the registry and marks everyone offline (nobody is connected to a broker that just started), after
     * deleting the peers past the retention period and the cap. `readOnly` (the CLI, perhaps while a broker runs)
     * only reads: the running broker owns the rows.
     */
    async open(options: { readOnly?: boolean } = {}): Promise<void> {
        if (this.subscription || this.records.size) return;
        await this.database.migrate();
        if (!options.readOnly) {
            await this.database.query(PeerRecord).filter({ online: true }).patchMany({ online: false });
            await this.deleteBeyondBounds();
        }
        for (const record of await this.database.query(PeerRecord).orderBy('lastSeen').find()) {
            if (!options.readOnly) record.connectedSince = undefined;
            this.records.set(record.id, record);
            if (!record.online) this.offline.add(record.id);
        }
        if (options.readOnly) return;
        // Before the exchange starts: its first presence events then find the shared history in place.
        await this.shared?.open((peerId, record) => this.merge(peerId, record));
        this.subscription = this.exchange.presence.subscribe(event => this.apply(event));
        this.sweepTimer = setInterval(() => this.dropExpired(), RETENTION_SWEEP_MS);
        this.sweepTimer.unref?.();
    }

    async close(): Promise<void> {
        clearInterval(this.sweepTimer);
        this.subscription?.unsubscribe();
        this.subscription = undefined;
        for (const record of this.records.values()) {
            if (!record.online) continue;
            record.online = false;
            record.connectedSince = undefined;
            record.lastSeen = new Date;
            this.writer.schedule(record);
            if (this.held.delete(record.id)) this.share(record);
        }
        // First: it stops following, so nothing is merged (and scheduled for SQLite) after the flush below.
        await this.shared?.close();
        await this.writer.flush();
        await this.deleting;
        this.presenceSubject.complete();
    }

    get(peerId: string): PeerRecord | undefined {
        return this.records.get(peerId);
    }

    info(peerId: string): PeerInfo | undefined {
        const record = this.records.get(peerId);
        return record && this.toInfo(record);
    }

    list(filter: PeerFilter = {}): PeerInfo[] {
        const result: PeerInfo[] = [];
        for (const record of this.records.values()) {
            if (filter.online !== undefined && record.online !== filter.online) continue;
            if (filter.capability && !record.capabilities.includes(filter.capability)) continue;
            result.push(this.toInfo(record));
        }
        return result.sort((a, b) => a.id.localeCompare(b.id));
    }

    /** The record as listed, with the grace hold the exchange keeps for an ID whose connection was lost. */
    protected toInfo(record: PeerRecord): PeerInfo {
        const info = toInfo(record);
        if (!record.online) info.heldUntil = this.exchange.heldUntil(record.id);
        return info;
    }

    /** O(1): every record that is not online is in `offline` (what `/status` and `/metrics` read per request). */
    countOnline(): number {
        return this.records.size - this.offline.size;
    }

    countKnown(): number {
        return this.records.size;
    }

    setOwner(peerId: string, owner: string, reclaimSecretHash?: string): void {
        let record = this.records.get(peerId);
        if (!record && this.shared) {
            // A cluster's presence comes from the directory watch, which may not have shown this registration yet.
            record = this.dropping.get(peerId) ?? new PeerRecord(peerId);
            this.dropping.delete(peerId);
            this.records.set(peerId, record);
            this.offline.add(peerId);
        }
        if (!record) return;
        record.owner = owner;
        record.reclaimSecretHash = reclaimSecretHash;
        this.writer.schedule(record);
        if (this.shared && this.holdsHere(peerId)) {
            this.held.add(peerId);
            this.share(record);
        }
    }

    /** A record from the shared registry: its history joins this broker's; presence stays the exchange's. */
    protected merge(peerId: string, shared: SharedPeerRecord): void {
        this.writers.set(peerId, shared.brokerId);
        let record = this.records.get(peerId);
        if (!record) {
            if (this.config.registryRetentionDays && shared.lastSeen.getTime() < Date.now() - this.config.registryRetentionDays * DAY_MS) return;
            record = this.dropping.get(peerId) ?? new PeerRecord(peerId);
            this.dropping.delete(peerId);
            record.firstSeen = shared.firstSeen;
            record.lastSeen = shared.lastSeen;
            this.records.set(peerId, record);
            this.offline.add(peerId);
        } else {
            if (shared.firstSeen < record.firstSeen) record.firstSeen = shared.firstSeen;
            if (shared.lastSeen >= record.lastSeen) record.lastSeen = shared.lastSeen;
        }
        if (shared.lastSeen >= record.lastSeen) {
            record.capabilities = shared.capabilities;
            record.owner = shared.owner;
            record.reclaimSecretHash = shared.reclaimSecretHash;
        }
        this.writer.schedule(record);
        while (this.offline.size > this.config.registryMaxOfflinePeers) this.drop(this.offline.values().next().value!);
    }

    protected holdsHere(peerId: string): boolean {
        return this.exchange.lookup(peerId)?.brokerId === this.exchange.brokerId;
    }

    /**
     * Whether this broker writes the shared record of a presence change: the broker holding the peer does; when a
     * peer's broker died, the first live broker by ID notes the peer's going (nobody else would).
     */
    protected writesFor(event: ExchangePresence): boolean {
        if (event.kind === 'online') {
            if (!this.holdsHere(event.peerId)) return false;
            this.held.add(event.peerId);
            return true;
        }
        if (event.kind === 'capabilities') return this.held.has(event.peerId);
        if (this.held.delete(event.peerId)) return true;
        const writer = this.writers.get(event.peerId);
        const alive = this.exchange.brokers().filter(broker => broker.alive).map(broker => broker.brokerId).sort();
        return writer !== undefined && !alive.includes(writer) && alive[0] === this.exchange.brokerId;
    }

    protected share(record: PeerRecord): void {
        this.writers.set(record.id, this.exchange.brokerId);
        this.shared!.write(record.id, {
            capabilities: record.capabilities, firstSeen: record.firstSeen, lastSeen: record.lastSeen, online: record.online,
            owner: record.owner, reclaimSecretHash: record.reclaimSecretHash, brokerId: this.exchange.brokerId,
        });
    }

    protected apply(event: ExchangePresence): void {
        let record = this.records.get(event.peerId);
        if (!record) {
            record = this.dropping.get(event.peerId);
            this.dropping.delete(event.peerId);
            if (!record) {
                record = new PeerRecord(event.peerId);
                record.firstSeen = event.at;
            }
            this.records.set(event.peerId, record);
        }
        record.lastSeen = event.at;
        if (event.kind === 'online') {
            record.online = true;
            record.connectedSince = event.at;
        } else if (event.kind === 'offline') {
            record.online = false;
            record.connectedSince = undefined;
        } else {
            record.capabilities = event.capabilities;
        }
        this.writer.schedule(record);
        if (this.shared && this.writesFor(event)) this.share(record);
        this.offline.delete(record.id);
        if (!record.online) {
            this.offline.add(record.id);
            while (this.offline.size > this.config.registryMaxOfflinePeers) this.drop(this.offline.values().next().value!);
        }
        this.presenceSubject.next(new PresenceEvent(event.kind, event.peerId, record.capabilities, event.at, ++this.sequence));
    }

    /** Drops the offline peers not seen within the retention period. */
    protected dropExpired(): void {
        if (!this.config.registryRetentionDays) return;
        const cutoff = Date.now() - this.config.registryRetentionDays * DAY_MS;
        for (const id of this.offline) {
            if (this.records.get(id)!.lastSeen.getTime() < cutoff) this.drop(id);
        }
    }

    protected drop(peerId: string): void {
        const record = this.records.get(peerId);
        this.offline.delete(peerId);
        if (!record) return;
        this.records.delete(peerId);
        this.dropping.set(peerId, record);
        if (!this.deleting) this.deleting = this.deleteDropped();
    }

    /** Deletes the rows of dropped records, after their pending writes (else a late insert would bring one back). */
    protected async deleteDropped(): Promise<void> {
        try {
            while (this.dropping.size) {
                await this.writer.flush();
                const ids: string[] = [];
                for (const id of this.dropping.keys()) {
                    ids.push(id);
                    if (ids.length === DELETE_BATCH) break;
                }
                for (const id of ids) {
                    this.dropping.delete(id);
                    this.writers.delete(id);
                }
                this.shared?.remove(ids);
                await this.database.query(PeerRecord).filter({ id: { $in: ids }, online: false }).deleteMany();
            }
        } catch (error) {
            this.logger.error('Could not delete dropped peers from the registry', error);
        } finally {
            // Right after the loop's last look at `dropping`: a record dropped from now on starts a new round.
            this.deleting = undefined;
        }
    }

    /** The start-up half of the bounds: rows past the retention period, and the longest-offline rows past the cap. */
    protected async deleteBeyondBounds(): Promise<void> {
        if (this.config.registryRetentionDays) {
            const cutoff = new Date(Date.now() - this.config.registryRetentionDays * DAY_MS);
            await this.database.query(PeerRecord).filter({ online: false, lastSeen: { $lt: cutoff } }).deleteMany();
        }
        const newestDropped = await this.database.query(PeerRecord).filter({ online: false }).orderBy('lastSeen', 'desc')
            .skip(this.config.registryMaxOfflinePeers).limit(1).findOneOrUndefined();
        if (newestDropped) {
            await this.database.query(PeerRecord).filter({ online: false, lastSeen: { $lte: newestDropped.lastSeen } }).deleteMany();
        }
    }
}

function toInfo(record: PeerRecord): PeerInfo {
    return new PeerInfo(record.id, record.online, record.capabilities, record.firstSeen, record.lastSeen, record.connectedSince);
}
