import { LoggerInterface } from '@deepkit/logger';
import { Subject, Subscription } from 'rxjs';
import { PeerFilter, PeerInfo, PresenceEvent } from '../../shared/broker-api';
import { BrokerConfig } from '../config';
import { ExchangePresence, PeerExchange } from '../exchange/peer-exchange';
import { RegistryDatabase } from './database';
import { PeerRecord } from './entities';
import { WriteBehind } from './write-behind';

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

    constructor(
        protected database: RegistryDatabase,
        protected exchange: PeerExchange,
        protected writer: WriteBehind,
        protected config: BrokerConfig,
        protected logger: LoggerInterface,
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
        }
        await this.writer.flush();
        await this.deleting;
        this.presenceSubject.complete();
    }

    get(peerId: string): PeerRecord | undefined {
        return this.records.get(peerId);
    }

    info(peerId: string): PeerInfo | undefined {
        const record = this.records.get(peerId);
        return record && toInfo(record);
    }

    list(filter: PeerFilter = {}): PeerInfo[] {
        const result: PeerInfo[] = [];
        for (const record of this.records.values()) {
            if (filter.online !== undefined && record.online !== filter.online) continue;
            if (filter.capability && !record.capabilities.includes(filter.capability)) continue;
            result.push(toInfo(record));
        }
        return result.sort((a, b) => a.id.localeCompare(b.id));
    }

    countOnline(): number {
        let online = 0;
        for (const record of this.records.values()) if (record.online) online++;
        return online;
    }

    countKnown(): number {
        return this.records.size;
    }

    setOwner(peerId: string, owner: string, reclaimSecretHash?: string): void {
        const record = this.records.get(peerId);
        if (!record) return;
        record.owner = owner;
        record.reclaimSecretHash = reclaimSecretHash;
        this.writer.schedule(record);
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
                for (const id of ids) this.dropping.delete(id);
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
