import { PresenceBatch, PresenceEvent, QuotaExceeded } from '@switchboard/protocol';
import { Subscription } from 'rxjs';
import { PeerRegistry } from '../registry/peer-registry';

/** Events in one snapshot batch: a snapshot of 100,000 peers goes out in bounded frames, not one huge one. */
export const SNAPSHOT_BATCH_EVENTS = 1000;
/** Peer IDs one connection may watch: its interest costs the broker memory and an index entry each. */
export const WATCHED_IDS_PER_CONNECTION = 10_000;

const fanouts = new WeakMap<PeerRegistry, PresenceFanout>();

/**
 * What one connection follows: the peer IDs it watches, or everyone. Its streams (`presenceBatches`) receive the
 * changes of those IDs, collected per event-loop turn.
 */
export class PresenceInterest {
    readonly ids = new Set<string>();
    /** Streams following this interest; each gets every batch. */
    readonly sinks = new Set<PresenceSink>();

    constructor(readonly connectionId: string) {
    }
}

/** One `presenceBatches` subscription: everyone, or the watched IDs of its connection. */
export interface PresenceSink {
    readonly everyone: boolean;
    /** Changes of this turn, sent as one batch when the turn ends. */
    pending: PresenceEvent[];
    send(batch: PresenceBatch): void;
}

/**
 * Presence by interest: each change reaches only the streams that watch its peer ID (or everyone), and each stream
 * gets the changes of one event-loop turn as one frame. A registration costs the broker work for the connections that
 * watch that peer, not for every connection online (the stock `presence()` stream costs a frame per subscriber and
 * change). One per broker; the registry's presence feeds it, so in a cluster it coalesces the directory watch's
 * bursts the same way.
 */
export class PresenceFanout {
    /** Interests by watched peer ID. */
    protected watchers = new Map<string, Set<PresenceInterest>>();
    /** Streams that follow everyone. */
    protected everyone = new Set<PresenceSink>();
    /** Streams with changes waiting for the end of the turn. */
    protected dirty = new Set<PresenceSink>();
    protected flushScheduled = false;
    protected subscription?: Subscription;

    /** The fan-out of a broker's registry (one per broker, made on first use, gone with the registry). */
    static of(registry: PeerRegistry): PresenceFanout {
        let fanout = fanouts.get(registry);
        if (!fanout) fanouts.set(registry, fanout = new PresenceFanout(registry));
        return fanout;
    }

    protected constructor(protected registry: PeerRegistry) {
    }

    /** Adds `peerIds` to `interest` and answers their state now (sequence 0). */
    watch(interest: PresenceInterest, peerIds: readonly string[]): PresenceEvent[] {
        const added = peerIds.filter(id => !interest.ids.has(id));
        if (interest.ids.size + new Set(added).size > WATCHED_IDS_PER_CONNECTION) {
            throw new QuotaExceeded(`This connection may watch the presence of ${WATCHED_IDS_PER_CONNECTION} peer IDs at most. `
                + 'Unwatch those you no longer need, or follow everyone with presenceBatches(true).', WATCHED_IDS_PER_CONNECTION);
        }
        for (const id of added) {
            interest.ids.add(id);
            if (interest.sinks.size) this.index(interest, id);
        }
        return [...new Set(peerIds)].map(id => this.stateOf(id));
    }

    unwatch(interest: PresenceInterest, peerIds: readonly string[]): void {
        for (const id of peerIds) {
            if (!interest.ids.delete(id)) continue;
            this.unindex(interest, id);
        }
    }

    /**
     * Starts a stream: its snapshot (the watched IDs' state, or everyone online) in bounded batches, the last one
     * `synced`, then live batches. Returns the function that ends it.
     */
    follow(interest: PresenceInterest, sink: PresenceSink): () => void {
        this.listen();
        const snapshot = sink.everyone
            ? this.registry.list({ online: true }).map(peer => new PresenceEvent('online', peer.id, peer.capabilities, peer.connectedSince ?? peer.lastSeen, 0))
            : [...interest.ids].map(id => this.stateOf(id));
        for (let start = 0; start < snapshot.length || start === 0; start += SNAPSHOT_BATCH_EVENTS) {
            const part = snapshot.slice(start, start + SNAPSHOT_BATCH_EVENTS);
            sink.send(new PresenceBatch(part, start + SNAPSHOT_BATCH_EVENTS >= snapshot.length));
        }
        if (sink.everyone) {
            this.everyone.add(sink);
        } else {
            if (!interest.sinks.size) for (const id of interest.ids) this.index(interest, id);
            interest.sinks.add(sink);
        }
        return () => {
            this.everyone.delete(sink);
            this.dirty.delete(sink);
            if (interest.sinks.delete(sink) && !interest.sinks.size) for (const id of interest.ids) this.unindex(interest, id);
        };
    }

    protected listen(): void {
        this.subscription ??= this.registry.presence.subscribe({
            next: event => this.collect(event),
            // The registry completes when the broker stops: whatever is collected still goes out.
            complete: () => this.flush(),
        });
    }

    /** A change: queued for the streams that follow its peer ID, sent when this turn ends. */
    protected collect(event: PresenceEvent): void {
        for (const sink of this.everyone) this.queue(sink, event);
        const interests = this.watchers.get(event.peerId);
        if (interests) for (const interest of interests) for (const sink of interest.sinks) this.queue(sink, event);
    }

    protected queue(sink: PresenceSink, event: PresenceEvent): void {
        sink.pending.push(event);
        this.dirty.add(sink);
        if (this.flushScheduled) return;
        this.flushScheduled = true;
        // After the I/O callbacks of this turn: the registrations that arrived together leave together.
        setImmediate(() => this.flush());
    }

    protected flush(): void {
        this.flushScheduled = false;
        const sinks = [...this.dirty];
        this.dirty.clear();
        for (const sink of sinks) {
            const events = sink.pending;
            sink.pending = [];
            // A long turn (a reconnect storm) still goes out in bounded frames.
            for (let start = 0; start < events.length; start += SNAPSHOT_BATCH_EVENTS) {
                sink.send(new PresenceBatch(events.slice(start, start + SNAPSHOT_BATCH_EVENTS), false));
            }
        }
    }

    protected stateOf(peerId: string): PresenceEvent {
        const info = this.registry.info(peerId);
        if (!info?.online) return new PresenceEvent('offline', peerId, info?.capabilities ?? [], info?.lastSeen ?? new Date(0), 0);
        return new PresenceEvent('online', peerId, info.capabilities, info.connectedSince ?? info.lastSeen, 0);
    }

    protected index(interest: PresenceInterest, peerId: string): void {
        let interests = this.watchers.get(peerId);
        if (!interests) this.watchers.set(peerId, interests = new Set());
        interests.add(interest);
    }

    protected unindex(interest: PresenceInterest, peerId: string): void {
        const interests = this.watchers.get(peerId);
        if (!interests?.delete(interest)) return;
        if (!interests.size) this.watchers.delete(peerId);
    }
}
