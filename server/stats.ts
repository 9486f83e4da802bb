import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The broker's counters, behind `/status` and `/metrics`. Plain numbers are bumped on the routing hot path; the
 * Prometheus registry (one per broker, so brokers in one process do not mix) reads them when scraped. Labels are
 * bounded sets (outcomes and error codes), never peer IDs.
 */
export class BrokerStats {
    readonly startedAt = new Date;
    callsRouted = 0;
    framesRouted = 0;
    bytesRouted = 0;
    registrations = 0;
    denials = 0;
    readonly refusals: Record<string, number> = {};
    /** Peers online, read when scraped. */
    onlinePeers: () => number = () => 0;

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
        counter('switchboard_registrations_total', 'Peer ID registrations accepted (including takeovers).', () => stats.registrations);
        counter('switchboard_calls_routed_total', 'Peer calls (Action frames) delivered to their target.', () => stats.callsRouted);
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

    observeCallLatency(milliseconds: number): void {
        this.latency.observe(milliseconds / 1000);
    }
}
