import { Subject, Subscription } from 'rxjs';
import { PeerFilter, PeerInfo, PresenceEvent } from '../../shared/broker-api';
import { ExchangePresence, PeerExchange } from '../exchange/peer-exchange';
import { RegistryDatabase } from './database';
import { PeerRecord } from './entities';
import { WriteBehind } from './write-behind';

/**
 * Every peer ID the broker has seen, with capabilities and first/last seen. Kept in memory for routing decisions
 * (PeerNotFound vs PeerOffline without a query) and written behind to SQLite. Follows the exchange's presence, so
 * in a cluster it also learns of peers on other brokers.
 */
export class PeerRegistry {
    protected records = new Map<string, PeerRecord>();
    protected sequence = 0;
    protected subscription?: Subscription;
    protected readonly presenceSubject = new Subject<PresenceEvent>();
    /** Presence changes, numbered in the order this broker saw them. */
    readonly presence = this.presenceSubject.asObservable();

    constructor(
        protected database: RegistryDatabase,
        protected exchange: PeerExchange,
        protected writer: WriteBehind,
    ) {
    }

    /** Loads the registry and marks everyone offline: nobody is connected to a broker that just started. */
    async open(): Promise<void> {
        if (this.subscription) return;
        await this.database.migrate();
        await this.database.query(PeerRecord).filter({ online: true }).patchMany({ online: false });
        for (const record of await this.database.query(PeerRecord).find()) {
            record.connectedSince = undefined;
            this.records.set(record.id, record);
        }
        this.subscription = this.exchange.presence.subscribe(event => this.apply(event));
    }

    async close(): Promise<void> {
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
            record = new PeerRecord(event.peerId);
            record.firstSeen = event.at;
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
        this.presenceSubject.next(new PresenceEvent(event.kind, event.peerId, record.capabilities, event.at, ++this.sequence));
    }
}

function toInfo(record: PeerRecord): PeerInfo {
    return new PeerInfo(record.id, record.online, record.capabilities, record.firstSeen, record.lastSeen, record.connectedSince);
}
