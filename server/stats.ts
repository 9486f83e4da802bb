import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ActiveTransfer, TrendSample } from '@switchboard/protocol';
import type { BrokerSummary } from './exchange/peer-exchange';
import { LatencyWindow, StatsHistory, TREND_SAMPLE_MS } from './stats-history';

/**
 * Transfers tracked at most. An entry ends with its stream or its connection; one whose end the broker never sees
 * (a serving peer that answers a chunk request without a stream) would otherwise stay until the caller disconnects.
 */
export const MAX_TRACKED_TRANSFERS = 1000;

/**
 * The broker's counters, behind `/status` and `/metrics`. Plain numbers are bumped on the routing hot path; the
 * Prometheus registry (one per broker, so brokers in one process do not mix) reads them when scraped. Labels are
 * bounded sets (outcomes and error codes), never peer IDs.
 */
export class BrokerStats {
    readonly startedAt = new Date;
    /** Peer calls delivered to their target (`outcome="delivered"`). */
    callsRouted = 0;
    /** Peer calls the broker could not deliver (PeerNotFound, PeerOffline). */
    callsUndeliverable = 0;
    /** Peer calls the gate refused (forged source, send policy). */
    callsDenied = 0;
    /** Error replies routed back to callers: the target refused or failed the call. */
    callErrors = 0;
    framesRouted = 0;
    bytesRouted = 0;
    registrations = 0;
    denials = 0;
    readonly refusals: Record<string, number> = {};
    /** File chunk streams being routed, by caller connection and request id; oldest first, at most MAX_TRACKED_TRANSFERS. */
    readonly transfers = new Map<string, ActiveTransfer & { callerConnection: string }>();
    /** Peers online, read when scraped. */
    onlinePeers: () => number = () => 0;
    /** The cluster's brokers (this one first), read when scraped. */
    brokers: () => BrokerSummary[] = () => [];

    /** The last 15 minutes, one sample a second, while the broker runs (startSampling). */
    readonly history = new StatsHistory();
    protected readonly latencyWindow = new LatencyWindow();
    protected sampler?: ReturnType<typeof setInterval>;
    protected sampled = { at: 0, calls: 0, refusals: 0 };

    readonly registry = new Registry();
    protected readonly latency = new Histogram({
        name: 'switchboard_call_latency_seconds',
        help: 'Time from routing a peer request to routing its final reply, at the broker.',
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
        registers: [this.registry],
    });

    constructor() {
        const stats = this;
        new Gauge({
            name: 'switchboard_peers_online', help: 'Peers with a live registration.', registers: [this.registry],
            collect() {
                this.set(stats.onlinePeers());
            },
        });
        const counter = (name: string, help: string, read: () => number) => new Counter({
            name, help, registers: [this.registry],
            collect() {
                this.reset();
                this.inc(read());
            },
        });
        // Labelled by broker ID: a bounded set (the brokers of one cluster), unlike peer IDs.
        new Gauge({
            name: 'switchboard_broker_info', help: 'Always 1; names the broker that answers this scrape.', labelNames: ['broker_id'], registers: [this.registry],
            collect() {
                this.reset();
                const self = stats.brokers()[0];
                if (self) this.labels(self.brokerId).set(1);
            },
        });
        new Gauge({
            name: 'switchboard_cluster_brokers', help: 'Brokers of the cluster this broker knows, by state (1 alive for a single broker).', labelNames: ['state'], registers: [this.registry],
            collect() {
                const brokers = stats.brokers();
                this.labels('alive').set(brokers.filter(broker => broker.alive).length);
                this.labels('dead').set(brokers.filter(broker => !broker.alive).length);
            },
        });
        new Gauge({
            name: 'switchboard_cluster_peers', help: 'Peers registered on each broker of the cluster.', labelNames: ['broker_id'], registers: [this.registry],
            collect() {
                // Reset first: a broker that left the cluster must not linger with its last count.
                this.reset();
                for (const broker of stats.brokers()) this.labels(broker.brokerId).set(broker.peers);
            },
        });
        new Gauge({
            name: 'switchboard_cluster_heartbeat_age_seconds', help: 'Seconds since each other broker of the cluster was last heard (absent on a single broker).', labelNames: ['broker_id'], registers: [this.registry],
            collect() {
                this.reset();
                for (const broker of stats.brokers().slice(1)) if (broker.heartbeatAgeMs !== undefined) this.labels(broker.brokerId).set(broker.heartbeatAgeMs / 1000);
            },
        });
        new Gauge({
            name: 'switchboard_cluster_nats_connected', help: '1 while this broker reaches the cluster\'s NATS, 0 while it is cut off (absent on a single broker).', registers: [this.registry],
            collect() {
                this.reset();
                const link = stats.brokers()[0]?.natsLink;
                if (link) this.set(link === 'up' ? 1 : 0);
            },
        });
        counter('switchboard_registrations_total', 'Peer ID registrations accepted (including takeovers).', () => stats.registrations);
        new Counter({
            name: 'switchboard_calls_routed_total', labelNames: ['outcome'], registers: [this.registry],
            help: 'Peer calls by outcome: delivered to the target, undeliverable (unknown or offline target), denied by the gate, answered with an error.',
            collect() {
                this.reset();
                this.labels('delivered').inc(stats.callsRouted);
                this.labels('undeliverable').inc(stats.callsUndeliverable);
                this.labels('denied').inc(stats.callsDenied);
                this.labels('error_reply').inc(stats.callErrors);
            },
        });
        counter('switchboard_frames_routed_total', 'Peer-routed frames and replies forwarded.', () => stats.framesRouted);
        counter('switchboard_bytes_routed_total', 'Bytes of forwarded frames.', () => stats.bytesRouted);
        new Counter({
            name: 'switchboard_refusals_total', help: 'Requests refused, by error code.', labelNames: ['reason'], registers: [this.registry],
            collect() {
                this.reset();
                for (const [reason, count] of Object.entries(stats.refusals)) this.labels(reason).inc(count);
            },
        });
    }

    refused(code: string): void {
        this.denials++;
        this.refusals[code] = (this.refusals[code] ?? 0) + 1;
    }

    transferStarted(callerConnection: string, messageId: number, to: string, from: string): void {
        if (this.transfers.size >= MAX_TRACKED_TRANSFERS) this.transfers.delete(this.transfers.keys().next().value!);
        this.transfers.set(callerConnection + ':' + messageId, { callerConnection, to, from, since: new Date });
    }

    transferEnded(callerConnection: string, messageId: number): void {
        if (this.transfers.size) this.transfers.delete(callerConnection + ':' + messageId);
    }

    /** A connection closed: its transfers, as caller or as the serving peer, ended with it. */
    transfersClosed(connection: string, peerId?: string): void {
        for (const [key, transfer] of this.transfers) {
            if (transfer.callerConnection === connection || (peerId && transfer.from === peerId)) this.transfers.delete(key);
        }
    }

    observeCallLatency(milliseconds: number): void {
        this.latency.observe(milliseconds / 1000);
        this.latencyWindow.observe(milliseconds);
    }

    /** Starts the history's sampling, once a second; `stopSampling` ends it. */
    startSampling(): void {
        if (this.sampler) return;
        this.sampled = { at: performance.now(), calls: this.callsRouted, refusals: this.denials };
        this.latencyWindow.reset();
        this.sampler = setInterval(() => this.takeSample(), TREND_SAMPLE_MS);
        this.sampler.unref();
    }

    stopSampling(): void {
        clearInterval(this.sampler);
        this.sampler = undefined;
    }

    protected takeSample(): void {
        const now = performance.now();
        // Per second of the interval actually elapsed: a busy event loop fires the timer late.
        const seconds = Math.max(0.001, (now - this.sampled.at) / 1000);
        const sample = new TrendSample();
        sample.callsPerSecond = Math.round((this.callsRouted - this.sampled.calls) / seconds);
        sample.refusalsPerSecond = Math.round((this.denials - this.sampled.refusals) / seconds);
        sample.p50Ms = round(this.latencyWindow.percentile(0.5));
        sample.p99Ms = round(this.latencyWindow.percentile(0.99));
        sample.peersOnline = this.onlinePeers();
        const brokers = this.brokers();
        if (brokers.length > 1) sample.brokers = brokers.map(({ brokerId, peers }) => ({ brokerId, peers }));
        this.history.add(sample);
        this.latencyWindow.reset();
        this.sampled = { at: now, calls: this.callsRouted, refusals: this.denials };
    }
}

/** Milliseconds to three significant decimals: the chart's resolution, and a smaller stream. */
function round(milliseconds: number): number {
    return Math.round(milliseconds * 1000) / 1000;
}
