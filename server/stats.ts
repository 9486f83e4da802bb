import type { Registry } from 'prom-client';
import { ActiveTransfer, TrendSample } from '@switchboard/protocol';
import type { BrokerSummary } from './exchange/peer-exchange';
import { LatencyWindow, StatsHistory, TREND_SAMPLE_MS } from './stats-history';
import { CALL_LATENCY_BUCKETS, LatencyHistogram } from './latency-histogram';

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

    /** Latencies of routed calls, for `/metrics`. */
    readonly latency = new LatencyHistogram(CALL_LATENCY_BUCKETS);
    protected prometheus?: Registry;

    /**
     * The Prometheus registry behind `/metrics`, made on the first scrape: a broker nobody scrapes never loads
     * prom-client (about 80 modules with its dependencies).
     */
    get registry(): Registry {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        this.prometheus ??= (require('./metrics') as typeof import('./metrics')).prometheusRegistry(this);
        return this.prometheus;
    }

    refused(code: string): void {
        this.denials++;
        this.refusals[code] = (this.refusals[code] ?? 0) + 1;
    }

    transferStarted(callerConnection: string, messageId: number, to: string, from: string): void {
        if (this.transfers.size >= MAX_TRACKED_TRANSFERS) this.transfers.delete(this.transfers.keys().next().value!);
        this.transfers.set(callerConnection + ':' + messageId, { callerConnection, to, from, since: new Date, bytes: 0 });
    }

    /** An item of a stream passed: the dashboard shows how much each one has carried. */
    transferCarried(callerConnection: string, messageId: number, bytes: number): void {
        if (!this.transfers.size) return;
        const transfer = this.transfers.get(callerConnection + ':' + messageId);
        if (transfer) transfer.bytes += bytes;
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
