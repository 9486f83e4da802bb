import { randomUUID } from 'crypto';
import { LoggerInterface } from '@deepkit/logger';
import { BrokerConfig } from '../config';
import { NatsBus } from './bus/nats-bus';
import { ensureAuditStream } from './cluster-audit';
import { ClusterExchangeOptions, ClusterPeerExchange } from './cluster-exchange';
import { NatsUnreachable } from './nats-link';
import { hasNatsCredentials } from './nats-servers';

export interface NatsExchangeOptions extends ClusterExchangeOptions {
    /** NATS server URLs, comma-separated. */
    natsUrl: string;
    /** The URL may come without credentials (a NATS open to anyone who reaches it): said loudly in the log. */
    natsInsecure?: boolean;
}

export function natsExchangeOptions(config: BrokerConfig): NatsExchangeOptions {
    return {
        natsUrl: config.natsUrl,
        cluster: config.cluster,
        brokerId: config.brokerId,
        heartbeatMs: config.clusterHeartbeatMs,
        deathTimeoutMs: config.clusterDeathTimeoutMs,
        maxPayloadBytes: config.maxPayloadBytes,
        natsInsecure: config.natsInsecure,
    };
}

/**
 * The exchange of a broker in a cluster on NATS (server/cluster/cluster-exchange.ts over a NatsBus): subjects are
 * core NATS, the directory and the holds are JetStream KV buckets, and the cluster's audit trail is a JetStream
 * stream (server/cluster/cluster-audit.ts).
 */
export class NatsPeerExchange extends ClusterPeerExchange {
    constructor(protected natsOptions: NatsExchangeOptions, logger?: LoggerInterface) {
        const brokerId = natsOptions.brokerId || randomUUID();
        const bus = new NatsBus(natsOptions.natsUrl, `switchboard ${natsOptions.cluster} ${brokerId}`, Math.min(500, natsOptions.heartbeatMs));
        super({ ...natsOptions, brokerId }, bus, logger);
    }

    protected override directoryUnreachable(error: Error): Error {
        return new NatsUnreachable(`NATS at ${(this.bus as NatsBus).link.redactedUrl} answers, but its JetStream directory does not (${error.message}). Start nats-server with JetStream (-js), and allow this broker's NATS user the cluster's subjects (README: Cluster, NATS permissions).`);
    }

    protected override async opened(): Promise<void> {
        const names = this.context.names;
        await ensureAuditStream((this.bus as NatsBus).link.nc, names).catch(error => this.logger.warn('Cluster: the cluster audit stream is out of reach; audit rows stay in this broker\'s database', (error as Error).message));
        if (!hasNatsCredentials(this.natsOptions.natsUrl)) {
            this.logger.warn('INSECURE: natsInsecure is set and the NATS URL has no credentials. Anyone who reaches this NATS can read the cluster\'s directory and inject frames as any broker. Run nats-server with authorization and per-broker permissions (README: Cluster).');
        }
    }
}
