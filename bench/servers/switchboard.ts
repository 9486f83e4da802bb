import { startBroker } from '../../server';
import { serveBenchmark } from './process-protocol';

/** The Switchboard broker as `npm start` runs it, with a :memory: registry and no rate limit in the way (BENCH_BROKER_PORT: a fixed port, for a restart). */
// A failed start is an unhandled rejection: Node prints it and exits 1, which the harness reports.
void startBroker({ port: Number(process.env.BENCH_BROKER_PORT ?? 0), database: ':memory:', logLevel: 'error', messagesPerSecond: 1_000_000_000, maxPayloadBytes: 64 * 1024 * 1024, maxConnectionsPerAddress: 0 })
    .then(broker => serveBenchmark(broker.port, () => broker.close()));
