import { RemoteController } from '@deepkit/rpc';
import { Observable } from 'rxjs';
import { BrokerApi, PresenceEvent } from '../../shared/broker-api';
import { DiscoveryApi, discoveryIdempotent, DiscoveryStep, PeerDescription, PeerSighting } from '../../shared/discovery-api';
import { PeerNotFound } from '../../shared/errors';
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
}

export interface Discovery {
    peer: PeerSighting;
    /** Which step answered: `live` (the peer itself), `peers` (a peer we asked), `cache`, or `broker`. */
    step: DiscoveryStep;
}

/** How long each live question of discovery may take before the next step is tried. */
const ASK_TIMEOUT_MS = 2000;
const PEERS_TO_ASK = 5;

/**
 * What this peer knows about others, and how it finds out, in the order of the discovery guide: ask the peer
 * itself if it is known to be live, then peers we are connected with, then the local cache, and the broker's
 * registry last. Everything learned goes to the cache (SQLite), so it is there after a restart.
 */
export class DiscoveryService {
    protected readonly startedAt = Date.now();
    protected online = new Set<string>();
    /** Presence writes go one after another, so the cache ends in the order events came. */
    protected writes: Promise<unknown> = Promise.resolve();

    constructor(protected database: PeerDatabase, protected host: DiscoveryHost) {
        host.presence$.subscribe(event => {
            this.writes = this.writes.then(() => this.learnFromPresence(event));
        });
    }

    describe(): PeerDescription {
        return new PeerDescription(this.host.id, this.host.appVersion, this.host.announcedCapabilities(), Math.round((Date.now() - this.startedAt) / 1000));
    }

    async knows(peerId: string): Promise<PeerSighting | undefined> {
        const known = await this.database.query(KnownPeer).filter({ id: peerId }).findOneOrUndefined();
        return known && toSighting(known);
    }

    /** Resolves when the cache has taken in every presence event so far. */
    idle(): Promise<unknown> {
        return this.writes;
    }

    isOnline(peerId: string): boolean {
        return this.online.has(peerId);
    }

    async discover(peerId: string): Promise<Discovery> {
        if (this.online.has(peerId)) {
            try {
                const description = await this.remote(peerId).info();
                const sighting = new PeerSighting(peerId, true, description.capabilities, new Date, peerId);
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
            const sighting = new PeerSighting(peerId, answer.value.sighting.online, answer.value.sighting.capabilities, answer.value.sighting.lastSeen, answer.value.id);
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

    protected async learnFromPresence(event: PresenceEvent): Promise<void> {
        if (event.kind === 'online') this.online.add(event.peerId);
        if (event.kind === 'offline') this.online.delete(event.peerId);
        await this.remember(new PeerSighting(event.peerId, event.kind !== 'offline', event.capabilities, event.at, 'presence'))
            .catch(() => undefined); // a cache: a lost write is relearned from the next event or the broker
    }

    protected async remember(sighting: PeerSighting): Promise<void> {
        const known = await this.database.query(KnownPeer).filter({ id: sighting.id }).findOneOrUndefined() ?? new KnownPeer(sighting.id);
        known.online = sighting.online;
        known.capabilities = sighting.capabilities;
        known.lastSeen = sighting.lastSeen;
        known.learnedFrom = sighting.learnedFrom;
        await this.database.persist(known);
    }
}

function toSighting(known: KnownPeer): PeerSighting {
    return new PeerSighting(known.id, known.online, known.capabilities, known.lastSeen, known.learnedFrom);
}
