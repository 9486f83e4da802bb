import { LoggerInterface } from '@deepkit/logger';
import { ExchangeEndpoint } from '../exchange/peer-exchange';
import { BrokerLiveness } from './broker-liveness';
import { BrokerOutbox } from './broker-outbox';
import { ClusterNames } from './cluster-names';
import { Directory } from './directory';
import { InFlightCalls } from './in-flight-calls';
import { NatsLink } from './nats-link';

/**
 * What the parts of a broker's cluster exchange (registrations, routing, liveness loop) share: its collaborators and
 * the little state more than one part reads. The NATS exchange builds it once and hands it to each part.
 *
 * The seam for a bus interface (issue 20: publish, subscribe, request, KV, with a NATS and an in-memory
 * implementation): the parts touch NATS only through `link` (publish on the control and audit subjects, the inbox
 * and control subscriptions), `outbox` (publish to a broker's inbox) and `directory` (the KV bucket). Those three are
 * what a bus would replace; the rest of the exchange is transport-free.
 */
export interface ClusterContext {
    readonly brokerId: string;
    /** Of the exchange's options (server/cluster/nats-exchange.ts), what the parts read. */
    readonly options: { readonly heartbeatMs: number, readonly deathTimeoutMs: number, readonly maxPayloadBytes: number };
    readonly logger: LoggerInterface;
    readonly names: ClusterNames;
    readonly link: NatsLink;
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
