import { http, HttpRequest, JSONResponse, Response } from '@deepkit/http';
import { BrokerStats } from '../stats';
import { PeerRegistry } from '../registry/peer-registry';
import { RegistryDatabase } from '../registry/database';
import { PeerRecord } from '../registry/entities';
import { BrokerSummary, PeerExchange } from '../exchange/peer-exchange';
import { BrokerConfig } from '../config';
import { PeerTokenStore } from '../registry/token-store';
import { AdminHttpGate } from './admin-http-gate';

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

/**
 * Liveness, readiness and a status summary for operators and load balancers. Every answer costs the same at 100 and
 * at 100,000 known peers: counts are kept as peers come and go, no list is built per request.
 */
export class HealthController {
    protected gate: AdminHttpGate;

    constructor(
        protected stats: BrokerStats,
        protected registry: PeerRegistry,
        protected database: RegistryDatabase,
        protected exchange: PeerExchange,
        config: BrokerConfig,
        tokens: PeerTokenStore,
    ) {
        this.gate = new AdminHttpGate(config, tokens);
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

    /** Prometheus text format (prom-client). Token mode: an admin token as bearer. */
    @http.GET('/metrics')
    async metrics(request: HttpRequest) {
        const refusal = await this.gate.refusal(request);
        if (refusal) return refusal;
        return new Response(await this.stats.registry.metrics(), this.stats.registry.contentType);
    }

    /** Token mode: an admin token as bearer. */
    @http.GET('/status')
    // No declared return type: Deepkit would serialize a response object by that type and send an empty body.
    async status(request: HttpRequest) {
        return await this.gate.refusal(request) ?? new JSONResponse(this.summary());
    }

    protected summary(): BrokerStatus {
        return {
            status: 'ok',
            brokerId: this.exchange.brokerId,
            brokers: this.exchange.brokers(),
            uptimeSeconds: Math.round((Date.now() - this.stats.startedAt.getTime()) / 1000),
            peersOnline: this.registry.countOnline(),
            peersKnown: this.registry.countKnown(),
            callsRouted: this.stats.callsRouted,
            framesRouted: this.stats.framesRouted,
            bytesRouted: this.stats.bytesRouted,
            denials: this.stats.denials,
            refusals: this.stats.refusals,
        };
    }
}
