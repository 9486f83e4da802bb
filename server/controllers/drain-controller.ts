import { http, HttpRequest, JSONResponse } from '@deepkit/http';
import { BrokerConfig } from '../config';
import { PeerTokenStore } from '../registry/token-store';
import { BrokerRuntime } from '../runtime';
import { AdminHttpGate } from './admin-http-gate';

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * `POST /admin/drain` (what `switchboard drain` sends): the broker tells its peers to move, stops accepting
 * connections, lets what is in flight finish and stops. Token mode: an admin token as bearer. Open mode has no
 * tokens, so only the broker's own machine may ask (or a SIGTERM).
 */
export class DrainController {
    protected gate: AdminHttpGate;

    constructor(protected runtime: BrokerRuntime, protected config: BrokerConfig, tokens: PeerTokenStore) {
        this.gate = new AdminHttpGate(config, tokens);
    }

    @http.POST('/admin/drain')
    async drain(request: HttpRequest) {
        if (this.config.auth === 'open') {
            if (!LOOPBACK.has(request.socket.remoteAddress ?? '')) {
                return new JSONResponse({ error: 'ACCESS_DENIED', message: 'Open mode: only the broker\'s own machine may drain it (or send it SIGTERM).' }, 403);
            }
        } else {
            const refusal = await this.gate.refusal(request);
            if (refusal) return refusal;
        }
        const timeoutMs = this.config.drainTimeoutMs;
        const already = this.runtime.isDraining;
        // Answered before the broker goes: the drain runs on, and the process exits when it is done.
        void this.runtime.drain(timeoutMs);
        return new JSONResponse({ status: 'draining', already, timeoutMs }, 202);
    }
}
