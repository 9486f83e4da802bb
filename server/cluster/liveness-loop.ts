import { ClusterUnavailable } from '@switchboard/protocol';
import { BrokerSummary } from '../exchange/peer-exchange';
import { ClusterContext } from './cluster-context';
import { ClusterRegistrations } from './cluster-registrations';
import { ClusterRouting, LINK_DOWN } from './cluster-routing';
import { Reaper } from './reaper';

/**
 * The cluster's liveness, as this broker takes part in it: heartbeats on the cluster's control subject, a tick that
 * judges the others (server/cluster/broker-liveness.ts keeps the table) and reaps a dead broker's entries (one broker
 * does, server/cluster/reaper.ts), and what follows a lost or returning NATS link. Calls in flight to a broker that
 * dies, or while this broker has lost NATS, end with PeerOffline or ClusterUnavailable at once; during a NATS outage
 * remote routes fail fast (nothing is buffered to arrive late); local routes go on.
 */
export class LivenessLoop {
    protected readonly reaper: Reaper;
    /** This broker's own stalls (a late tick) and NATS blips so far: each voids the liveness evidence gathered before it. */
    protected disturbances = 0;
    protected lastTick = performance.now();
    protected timer?: ReturnType<typeof setInterval>;
    protected rebuilding?: Promise<void>;
    /** Peer counts per broker, from the last tick. */
    protected peersPerBroker = new Map<string, number>();
    /** Counts this broker's NATS reconnects; sent with each heartbeat, so the others notice an interruption. */
    protected linkEpoch = 0;

    constructor(protected context: ClusterContext, protected registrations: ClusterRegistrations, protected routing: ClusterRouting) {
        this.reaper = new Reaper(context.directory, context.liveness, context.brokerId, context.options.deathTimeoutMs, () => this.disturbances);
    }

    /** The directory view is being rebuilt. */
    get recovering(): boolean {
        return !!this.rebuilding;
    }

    /** Beats now, then every heartbeatMs. */
    start(): void {
        this.beat();
        this.lastTick = performance.now();
        this.timer = setInterval(() => this.tick(), this.context.options.heartbeatMs);
        this.timer.unref?.();
    }

    stop(): void {
        clearInterval(this.timer);
        this.reaper.stop();
    }

    /** The others list this broker as gone at once, instead of as dead after the timeout. */
    leave(): void {
        if (!this.context.bus.connected) return;
        try {
            this.context.bus.publish(this.context.names.control, JSON.stringify({ b: this.context.brokerId, leaving: true }));
        } catch {
            // Going anyway.
        }
    }

    brokers(): BrokerSummary[] {
        const { brokerId, bus, liveness } = this.context;
        const now = Date.now();
        const summaries: BrokerSummary[] = [{ brokerId, alive: bus.connected, peers: this.registrations.held.size, lastSeen: new Date(now), heartbeatAgeMs: 0, natsLink: bus.connected ? 'up' : 'down' }];
        for (const broker of liveness.list()) {
            summaries.push({
                ...broker, peers: this.peersPerBroker.get(broker.brokerId) ?? 0,
                heartbeatAgeMs: Math.max(0, now - broker.lastSeen.getTime()), natsLink: broker.alive ? 'up' : 'down',
            });
        }
        return summaries;
    }

    protected beat(): void {
        if (!this.context.bus.connected) return;
        try {
            this.context.bus.publish(this.context.names.control, JSON.stringify({ b: this.context.brokerId, p: this.registrations.held.size, e: this.linkEpoch }));
        } catch {
            // The link went down between the check and the publish; the next tick tries again.
        }
    }

    /** A message on the control subject: another broker's heartbeat, or its goodbye. */
    heartbeat(data: Uint8Array): void {
        const { liveness } = this.context;
        try {
            const { b, leaving, e } = JSON.parse(new TextDecoder().decode(data)) as { b?: unknown, leaving?: unknown, e?: unknown };
            if (typeof b !== 'string' || b.length > 64 || b === this.context.brokerId) return;
            if (leaving === true) {
                if (liveness.left(b, Date.now())) this.brokerGone(b, 'is on a broker that stopped');
                return;
            }
            if (liveness.heard(b, Date.now())) this.context.logger.log(`Cluster: broker ${b} is back`);
            // Its link was interrupted: what was on the way to it, or back from it, was dropped by NATS. It waits to
            // hear this broker before it sends anything here: a heartbeat at once shortens that wait to a round trip.
            if (typeof e === 'number' && liveness.epochChanged(b, e)) {
                this.routing.failCalls(this.context.inFlight.take(b), '', target => ClusterUnavailable.for(target, `the NATS link of its broker ${b} was interrupted`));
                this.beat();
            }
        } catch {
            // Not a heartbeat.
        }
    }

    protected tick(): void {
        const { options, liveness, directory } = this.context;
        // A tick a quarter of the death timeout late: this broker's loop stood still (GC, SIGSTOP, a VM pause, a
        // blocking handler), and the heartbeats that arrived meanwhile wait unread behind this timer. Their senders'
        // silence is this broker's own: it does not count, and evidence gathered for a reap before it is void. (A live
        // broker looks dead only after heartbeat + stall > death timeout, and the death timeout is at least two
        // beats: smaller lags, common on a busy machine, need not slow death detection down.)
        const late = performance.now() - this.lastTick - options.heartbeatMs;
        this.lastTick = performance.now();
        if (late > options.deathTimeoutMs / 4) {
            this.disturbances++;
            liveness.discount(late);
            if (late > options.deathTimeoutMs / 2) this.context.logger.warn(`Cluster: this broker's event loop stood still for ${Math.round(late)} ms; it re-learns the others' liveness before judging them`);
        }
        if (this.context.stopped || !this.context.bus.connected) return;
        this.beat();
        const now = Date.now();
        const counts = new Map<string, number>();
        for (const entry of directory.entries.values()) counts.set(entry.brokerId, (counts.get(entry.brokerId) ?? 0) + 1);
        this.peersPerBroker = counts;
        for (const brokerId of counts.keys()) liveness.noticed(brokerId, now);
        for (const brokerId of liveness.check(now)) this.brokerDied(brokerId);
        for (const brokerId of liveness.deadBrokers()) {
            if (counts.has(brokerId)) void this.reaper.reap(brokerId);
        }
        if (this.rebuilding) return;
        directory.prune();
        if (this.context.needsRecovery || directory.stalled(3)) {
            void this.recover();
            return;
        }
        directory.writeProbe().catch(() => this.context.needsRecovery = true);
    }

    protected brokerDied(brokerId: string): void {
        this.context.logger.warn(`Cluster: broker ${brokerId} sent no heartbeat for ${this.context.options.deathTimeoutMs} ms; it is dead`);
        this.brokerGone(brokerId, 'is on a broker that stopped answering');
    }

    protected brokerGone(brokerId: string, reason: string): void {
        this.routing.brokerGone(brokerId, reason);
        void this.reaper.reap(brokerId);
    }

    linkLost(): void {
        if (this.context.stopped) return;
        this.disturbances++;
        this.context.logger.warn('Cluster: lost NATS; peers of this broker stay registered and call each other, calls to peers on other brokers fail with ClusterUnavailable until it is back');
        for (const calls of this.context.inFlight.takeAll()) this.routing.failCalls(calls, '', target => ClusterUnavailable.for(target, LINK_DOWN));
        this.context.outbox.drop();
    }

    linkBack(): void {
        if (this.context.stopped) return;
        this.disturbances++;
        this.linkEpoch++;
        this.context.liveness.restartClocks(Date.now());
        // The others learn at once that this broker is subscribed again (and that its link was interrupted).
        this.beat();
        this.context.logger.log('Cluster: NATS is back; rebuilding the directory view');
        void this.recover();
    }

    /** A fresh watch (the store may be empty, or the old watch stalled), then this broker's registrations again. */
    protected recover(): Promise<void> {
        this.rebuilding ??= (async () => {
            this.context.needsRecovery = false;
            try {
                await this.context.directory.rebuild(() => this.registrations.reassert());
            } catch (error) {
                this.context.needsRecovery = true;
                this.context.logger.warn('Cluster: could not rebuild the directory view yet', (error as Error).message);
            } finally {
                this.rebuilding = undefined;
            }
        })();
        return this.rebuilding;
    }
}
