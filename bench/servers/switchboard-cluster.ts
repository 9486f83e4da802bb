import { startBroker } from '@switchboard/broker';
import { serveBenchmark } from './process-protocol';

/**
 * One broker of a cluster, as `npm start` runs it with SWITCHBOARD_NATS_URL: the NATS URL and broker ID come from
 * BENCH_NATS_URL and BENCH_BROKER_ID. Otherwise as servers/switchboard.ts (a :memory: registry, no rate limit).
 */
void startBroker({
    port: 0, database: ':memory:', logLevel: 'error', messagesPerSecond: 1_000_000_000, maxConnectionsPerAddress: 0,
    natsUrl: process.env.BENCH_NATS_URL, brokerId: process.env.BENCH_BROKER_ID, cluster: 'bench',
    // The bench's own NATS, on loopback for the length of one scenario, without users.
    natsInsecure: true,
}).then(broker => serveBenchmark(broker.port, () => broker.close()));
