import { LoggerInterface } from '@deepkit/logger';
import { ExchangeEndpoint } from '../exchange/peer-exchange';
import { ClusterBus } from './bus/cluster-bus';
import { BrokerLiveness } from './broker-liveness';
import { BrokerOutbox } from './broker-outbox';
import { ClusterNames } from './cluster-names';
import { Directory } from './directory';
import { InFlightCalls } from './in-flight-calls';

/**
 * What the parts of a broker's cluster exchange (registrations, routing, liveness loop) share: its collaborators and
 * the little state more than one part reads. The NATS exchange builds it once and hands it to each part.
 *
 * The parts reach the other brokers only through `bus` (server/cluster/bus/cluster-bus.ts: NATS, or in memory):
 * heartbeats on the control subject, `outbox` (a broker's inbox) and `directory` (a KV bucket) are built on it.
 */
export interface ClusterContext {
    readonly brokerId: string;
    /** Of the exchange's options (server/cluster/nats-exchange.ts), what the parts read. */
    readonly options: { readonly heartbeatMs: number, readonly deathTimeoutMs: number, readonly maxPayloadBytes: number };
    readonly logger: LoggerInterface;
    readonly names: ClusterNames;
    readonly bus: ClusterBus;
    readonly directory: Directory;
    readonly liveness: BrokerLiveness;
    readonly inFlight: InFlightCalls;
    readonly outbox: BrokerOutbox;
    /** The connections of this broker, by connection ID. */
    readonly endpoints: Map<string, ExchangeEndpoint>;
    /** stop() has begun: nothing new is routed, published or reclaimed. */
    stopped: boolean;
    /** The directory view must be rebuilt (a write or a reclaim failed): the next tick does it. */
    needsRecovery: boolean;
}
