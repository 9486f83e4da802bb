import { RemoteController } from '@deepkit/rpc';
import { Observable } from 'rxjs';
import { BrokerApi, PresenceEvent, boundedCapabilities, DiscoveryApi, discoveryIdempotent, DiscoveryStep, PeerDescription, PeerSighting, PeerNotFound } from '@switchboard/protocol';
import { RemotePeer } from '../remote-peer';
import { KnownPeer } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';

export interface DiscoveryHost {
    readonly id: string;
    readonly appVersion: string;
    readonly broker: RemoteController<BrokerApi>;
    readonly presence$: Observable<PresenceEvent>;
    announcedCapabilities(): string[];
    to(peerId: string): RemotePeer;
    /** Follows these peers' presence (PeerOptions.presence); resolves once their state is known. */
    watchPresence(peerIds: Iterable<string>): Promise<void>;
}

export interface Discovery {
    peer: PeerSighting;
    /** Which step answered: `live` (the peer itself), `peers` (a peer we asked), `cache`, or `broker`. */
    step: DiscoveryStep;
}

/** How long each live question of discovery may take before the next step is tried. */
const ASK_TIMEOUT_MS = 2000;
const PEERS_TO_ASK = 5;
/** Rows looked up in one query (SQLite bounds the parameters of one statement). */
const WRITE_BATCH = 500;
/**
 * How long presence sightings wait in memory before they are written: a join's burst of presence (a snapshot, a
 * reconnect storm) is one write, not one per batch. Past UNWRITTEN_MAX sightings they are written at once.
 */
const WRITE_DELAY_MS = 1000;
const UNWRITTEN_MAX = 5000;

/**
 * What this peer knows about others, and how it finds out, in the order of the discovery guide: ask the peer
 * itself if it is known to be live, then peers we are connected with, then the local cache, and the broker's
 * registry last. Everything learned goes to the cache (SQLite), so it is there after a restart.
 */
export class DiscoveryService {
    protected readonly startedAt = Date.now();
    protected online = new Set<string>();
    /**
     * Presence sightings not yet in the cache, latest per peer, in arrival order. Every peer hears of every other
     * one, so n peers joining make n² sightings across an app: written one query pair each, joining 100 SDK peers in
     * one process took 20,000 statements. They go in batches instead, one transaction each, while the events keep
     * coming during the previous batch's write.
     */
    protected unwritten = new Map<string, PeerSighting>();
    protected writing?: Promise<void>;
    protected writeTimer?: ReturnType<typeof setTimeout>;

    /** @internal Built by the peer, never by an app. */
    constructor(protected database: PeerDatabase, protected host: DiscoveryHost) {
        host.presence$.subscribe(event => this.learnFromPresence(event));
    }

    describe(): PeerDescription {
        return new PeerDescription(this.host.id, this.host.appVersion, this.host.announcedCapabilities(), Math.round((Date.now() - this.startedAt) / 1000));
    }

    async knows(peerId: string): Promise<PeerSighting | undefined> {
        const unwritten = this.unwritten.get(peerId);
        if (unwritten) return unwritten;
        const known = await this.database.query(KnownPeer).filter({ id: peerId }).findOneOrUndefined();
        return known && toSighting(known);
    }

    /** Resolves when the cache has taken in every presence event so far. */
    async idle(): Promise<void> {
        if (this.writeTimer) this.writeNow();
        while (this.writing) await this.writing;
    }

    isOnline(peerId: string): boolean {
        return this.online.has(peerId);
    }

    async discover(peerId: string): Promise<Discovery> {
        // Presence by interest: a peer this one never dealt with is followed from now on, its state known first.
        if (!this.online.has(peerId)) await this.host.watchPresence([peerId]).catch(() => undefined);
        if (this.online.has(peerId)) {
            try {
                const description = await this.remote(peerId).info();
                const sighting = new PeerSighting(peerId, true, boundedCapabilities(description.capabilities), new Date, peerId);
                await this.remember(sighting);
                return { peer: sighting, step: 'live' };
            } catch {
                // Not answering after all: ask around.
            }
        }

        const askable = [...this.online].filter(id => id !== peerId && id !== this.host.id).slice(0, PEERS_TO_ASK);
        const answers = await Promise.allSettled(askable.map(async id => ({ id, sighting: await this.remote(id).knows(peerId) })));
        for (const answer of answers) {
            if (answer.status !== 'fulfilled' || !answer.value.sighting) continue;
            const sighting = new PeerSighting(peerId, answer.value.sighting.online, boundedCapabilities(answer.value.sighting.capabilities), answer.value.sighting.lastSeen, answer.value.id);
            await this.remember(sighting);
            return { peer: sighting, step: 'peers' };
        }

        const cached = await this.knows(peerId);
        if (cached) return { peer: cached, step: 'cache' };

        try {
            const info = await this.host.broker.getPeer(peerId);
            const sighting = new PeerSighting(peerId, info.online, info.capabilities, info.lastSeen, 'broker');
            await this.remember(sighting);
            return { peer: sighting, step: 'broker' };
        } catch (error) {
            if (error instanceof PeerNotFound) throw error;
            throw new PeerNotFound(`Could not discover "${peerId}": no peer, cache or broker knew it (${(error as Error).message}).`, peerId);
        }
    }

    protected remote(peerId: string) {
        return this.host.to(peerId).controller<DiscoveryApi>(DiscoveryApi, { timeout: ASK_TIMEOUT_MS, idempotent: discoveryIdempotent });
    }

    protected learnFromPresence(event: PresenceEvent): void {
        if (event.kind === 'online') this.online.add(event.peerId);
        if (event.kind === 'offline') this.online.delete(event.peerId);
        // The state of an ID this peer just started to follow, offline: the broker's record, not a sighting.
        if (event.kind === 'offline' && event.sequence === 0) return;
        // Re-inserted, so the map's order stays the order of the peers' latest events.
        this.unwritten.delete(event.peerId);
        this.unwritten.set(event.peerId, new PeerSighting(event.peerId, event.kind !== 'offline', event.capabilities, event.at, 'presence'));
        if (this.unwritten.size >= UNWRITTEN_MAX) return this.writeNow();
        if (this.writeTimer || this.writing) return;
        this.writeTimer = setTimeout(() => this.writeNow(), WRITE_DELAY_MS);
        // A cache: a pending write never keeps a process alive.
        (this.writeTimer as { unref?: () => void }).unref?.();
    }

    protected writeNow(): void {
        clearTimeout(this.writeTimer);
        this.writeTimer = undefined;
        this.writing ??= this.writeUnwritten();
    }

    protected async writeUnwritten(): Promise<void> {
        while (this.unwritten.size) {
            const batch = [...this.unwritten.values()];
            this.unwritten.clear();
            // A cache: a lost write is relearned from the next event or the broker.
            await this.rememberAll(batch).catch(() => undefined);
        }
        this.writing = undefined;
    }

    protected remember(sighting: PeerSighting): Promise<void> {
        return this.rememberAll([sighting]);
    }

    /** One transaction for all of them: one query for the rows there are, one insert for the rows there are not. */
    protected rememberAll(sightings: PeerSighting[]): Promise<void> {
        return this.database.write(async session => {
            for (let start = 0; start < sightings.length; start += WRITE_BATCH) {
                const slice = sightings.slice(start, start + WRITE_BATCH);
                const known = new Map<string, KnownPeer>();
                for (const row of await session.query(KnownPeer).filter({ id: { $in: slice.map(each => each.id) } }).find()) known.set(row.id, row);
                for (const sighting of slice) {
                    const row = known.get(sighting.id) ?? new KnownPeer(sighting.id);
                    row.online = sighting.online;
                    row.capabilities = sighting.capabilities;
                    row.lastSeen = sighting.lastSeen;
                    row.learnedFrom = sighting.learnedFrom;
                    session.add(row);
                }
            }
        });
    }
}

function toSighting(known: KnownPeer): PeerSighting {
    return new PeerSighting(known.id, known.online, known.capabilities, known.lastSeen, known.learnedFrom);
}
