import { http, JSONResponse, Response } from '@deepkit/http';
import { BrokerStats } from '../stats';
import { PeerRegistry } from '../registry/peer-registry';
import { RegistryDatabase } from '../registry/database';
import { PeerRecord } from '../registry/entities';
import { BrokerSummary, PeerExchange } from '../exchange/peer-exchange';

export interface BrokerStatus {
    status: 'ok';
    /** The broker answering. */
    brokerId: string;
    /** Every broker of its cluster, this one first; a single broker lists only itself. */
    brokers: BrokerSummary[];
    uptimeSeconds: number;
    peersOnline: number;
    peersKnown: number;
    callsRouted: number;
    framesRouted: number;
    bytesRouted: number;
    denials: number;
    refusals: Record<string, number>;
}

/** Liveness, readiness and a status summary for operators and load balancers. */
export class HealthController {
    constructor(
        protected stats: BrokerStats,
        protected registry: PeerRegistry,
        protected database: RegistryDatabase,
        protected exchange: PeerExchange,
    ) {
    }

    /** The process is up and serving HTTP. */
    @http.GET('/health')
    health() {
        return { status: 'ok' };
    }

    /** The database answers and the broker accepts connections. */
    @http.GET('/ready')
    async ready() {
        try {
            await this.database.query(PeerRecord).limit(1).find();
        } catch {
            return new JSONResponse({ status: 'unavailable', reason: 'database' }, 503);
        }
        return new JSONResponse({ status: 'ready' }, 200);
    }

    /** Prometheus text format (prom-client). */
    @http.GET('/metrics')
    async metrics() {
        return new Response(await this.stats.registry.metrics(), this.stats.registry.contentType);
    }

    @http.GET('/status')
    status(): BrokerStatus {
        return {
            status: 'ok',
            brokerId: this.exchange.brokerId,
            brokers: this.exchange.brokers(),
            uptimeSeconds: Math.round((Date.now() - this.stats.startedAt.getTime()) / 1000),
            peersOnline: this.registry.countOnline(),
            peersKnown: this.registry.list().length,
            callsRouted: this.stats.callsRouted,
            framesRouted: this.stats.framesRouted,
            bytesRouted: this.stats.bytesRouted,
            denials: this.stats.denials,
            refusals: this.stats.refusals,
        };
    }
}
