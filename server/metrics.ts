import { Counter, Gauge, Registry } from 'prom-client';
import type { LatencyHistogram } from './latency-histogram';
import type { BrokerStats } from './stats';

/**
 * The broker's Prometheus registry (`/metrics`), one per broker so brokers in one process do not mix: every metric
 * reads the plain counters of `BrokerStats` when scraped. Loaded on the first scrape (see `BrokerStats.registry`).
 */
export function prometheusRegistry(stats: BrokerStats): Registry {
    const registry = new Registry();
    // The cast: prom-client's registry formats any object with a name, a type and get() (its own metrics are such
    // objects), but its types name only its four classes, none of which can be read from counts kept elsewhere.
    registry.registerMetric(histogramMetric('switchboard_call_latency_seconds', 'Time from routing a peer request to routing its final reply, at the broker.', stats.latency) as never);
    new Gauge({
        name: 'switchboard_peers_online', help: 'Peers with a live registration.', registers: [registry],
        collect() {
            this.set(stats.onlinePeers());
        },
    });
    const counter = (name: string, help: string, read: () => number) => new Counter({
        name, help, registers: [registry],
        collect() {
            this.reset();
            this.inc(read());
        },
    });
    // Labelled by broker ID: a bounded set (the brokers of one cluster), unlike peer IDs.
    new Gauge({
        name: 'switchboard_broker_info', help: 'Always 1; names the broker that answers this scrape.', labelNames: ['broker_id'], registers: [registry],
        collect() {
            this.reset();
            const self = stats.brokers()[0];
            if (self) this.labels(self.brokerId).set(1);
        },
    });
    new Gauge({
        name: 'switchboard_cluster_brokers', help: 'Brokers of the cluster this broker knows, by state (1 alive for a single broker).', labelNames: ['state'], registers: [registry],
        collect() {
            const brokers = stats.brokers();
            this.labels('alive').set(brokers.filter(broker => broker.alive).length);
            this.labels('dead').set(brokers.filter(broker => !broker.alive).length);
        },
    });
    new Gauge({
        name: 'switchboard_cluster_peers', help: 'Peers registered on each broker of the cluster.', labelNames: ['broker_id'], registers: [registry],
        collect() {
            // Reset first: a broker that left the cluster must not linger with its last count.
            this.reset();
            for (const broker of stats.brokers()) this.labels(broker.brokerId).set(broker.peers);
        },
    });
    new Gauge({
        name: 'switchboard_cluster_heartbeat_age_seconds', help: 'Seconds since each other broker of the cluster was last heard (absent on a single broker).', labelNames: ['broker_id'], registers: [registry],
        collect() {
            this.reset();
            for (const broker of stats.brokers().slice(1)) if (broker.heartbeatAgeMs !== undefined) this.labels(broker.brokerId).set(broker.heartbeatAgeMs / 1000);
        },
    });
    new Gauge({
        name: 'switchboard_cluster_nats_connected', help: '1 while this broker reaches the cluster\'s NATS, 0 while it is cut off (absent on a single broker).', registers: [registry],
        collect() {
            this.reset();
            const link = stats.brokers()[0]?.natsLink;
            if (link) this.set(link === 'up' ? 1 : 0);
        },
    });
    counter('switchboard_registrations_total', 'Peer ID registrations accepted (including takeovers).', () => stats.registrations);
    new Counter({
        name: 'switchboard_calls_routed_total', labelNames: ['outcome'], registers: [registry],
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
        name: 'switchboard_refusals_total', help: 'Requests refused, by error code.', labelNames: ['reason'], registers: [registry],
        collect() {
            this.reset();
            for (const [reason, count] of Object.entries(stats.refusals)) this.labels(reason).inc(count);
        },
    });
    return registry;
}

/** A histogram metric over a `LatencyHistogram`'s counts, in the shape prom-client's own histograms report. */
function histogramMetric(name: string, help: string, histogram: LatencyHistogram) {
    return {
        name, help, type: 'histogram' as const, aggregator: 'sum' as const,
        async get() {
            const values: { metricName: string, labels: Record<string, string | number>, value: number }[] = [];
            let cumulative = 0;
            histogram.bounds.forEach((bound, slot) => {
                cumulative += histogram.counts[slot];
                values.push({ metricName: `${name}_bucket`, labels: { le: bound }, value: cumulative });
            });
            values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: histogram.count });
            values.push({ metricName: `${name}_sum`, labels: {}, value: histogram.sum });
            values.push({ metricName: `${name}_count`, labels: {}, value: histogram.count });
            return { name, help, type: 'histogram', aggregator: 'sum', values };
        },
    };
}
