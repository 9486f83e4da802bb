import { HttpRequest, JSONResponse } from '@deepkit/http';
import { BrokerConfig } from '../config';
import { PeerTokenStore } from '../registry/token-store';

const BEARER = /^Bearer\s+(\S{1,512})\s*$/i;

/**
 * Who may read the broker's operator endpoints over HTTP (`/status`, `/metrics`). In open mode anyone; in token mode
 * a request that carries an admin token, `Authorization: Bearer <token>` (what Prometheus sends with
 * `authorization: { credentials: … }` in its scrape config). `/health` and `/ready` stay public for load balancers;
 * they tell nothing about peers.
 */
export class AdminHttpGate {
    constructor(protected config: BrokerConfig, protected tokens: PeerTokenStore) {
    }

    /** @returns undefined when the request may pass, else the response that refuses it (401 or 403). */
    async refusal(request: HttpRequest): Promise<JSONResponse | undefined> {
        if (this.config.auth === 'open') return;
        const token = BEARER.exec(request.headers.authorization ?? '')?.[1];
        if (!token) {
            return new JSONResponse({ error: 'NOT_AUTHENTICATED', message: 'Token mode: send an admin token as "Authorization: Bearer <token>" (token:create <name> --admin).' }, 401)
                .header('WWW-Authenticate', 'Bearer realm="switchboard"');
        }
        const grant = await this.tokens.verify(token);
        if (!grant) {
            return new JSONResponse({ error: 'AUTHENTICATION_FAILED', message: 'The token is unknown or revoked. Ask the broker operator for an admin token.' }, 401)
                .header('WWW-Authenticate', 'Bearer realm="switchboard", error="invalid_token"');
        }
        if (!grant.admin) {
            return new JSONResponse({ error: 'ACCESS_DENIED', message: `Token "${grant.name}" is not an admin token; this endpoint needs one (token:create <name> --admin).` }, 403);
        }
        return;
    }
}
