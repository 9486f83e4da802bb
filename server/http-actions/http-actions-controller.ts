import { http, HttpRegExp, HttpRequest, JSONResponse, Response } from '@deepkit/http';
import { PayloadTooLarge } from '@switchboard/protocol';
import { BrokerConfig } from '../config';
import { HttpActionGateway, HttpIdentity } from './http-action-gateway';
import { httpError } from './http-errors';
import { openApiDocument } from './openapi';

/** Longest wait an HTTP client may ask for with `X-Timeout-Ms`. */
const MAX_TIMEOUT_MS = 10 * 60_000;

/**
 * Actions over HTTP: `POST /peers/<id>/<controller>/<action>` with a JSON array of arguments answers the action's
 * result as JSON; `GET /peers/<id>/http-actions` is an OpenAPI document of what the peer serves. Errors answer
 * with a status (400 validation, 401/403 access, 404 unknown peer or action, 413, 429, 503 offline, 504 timeout)
 * and `{ code, message }`. Works on any broker of a cluster, for a peer on any broker.
 */
export class HttpActionsController {
    constructor(protected gateway: HttpActionGateway, protected config: BrokerConfig) {
    }

    @http.GET('/peers/:peerId/http-actions')
    async list(peerId: string, request: HttpRequest) {
        return this.answer(async () => {
            const identity = await this.gateway.authenticate(request.headers.authorization);
            const actions = await this.gateway.list(identity, peerId, this.timeoutOf(request));
            return new JSONResponse(openApiDocument(peerId, actions), 200);
        });
    }

    @http.POST('/peers/:peerId/:path')
    async call(peerId: string, /** A controller path and an action name: `test/echo/echo` → controller `test/echo`, action `echo`. */
        path: HttpRegExp<string, '[^?#]+/[^/?#]+'>, request: HttpRequest) {
        return this.answer(async () => {
            const identity: HttpIdentity = await this.gateway.authenticate(request.headers.authorization);
            const split = path.lastIndexOf('/');
            const argumentsJson = await this.body(request);
            const result = await this.gateway.call(identity, peerId, path.slice(0, split), path.slice(split + 1), argumentsJson, this.timeoutOf(request));
            return new Response(result, 'application/json; charset=utf-8');
        });
    }

    protected async answer(work: () => Promise<Response | JSONResponse>): Promise<Response | JSONResponse> {
        try {
            return await work();
        } catch (error) {
            const { status, body } = httpError(error);
            return new JSONResponse(body, status);
        }
    }

    /** `X-Timeout-Ms`, else the broker's recommended call timeout. */
    protected timeoutOf(request: HttpRequest): number {
        const asked = Number(request.headers['x-timeout-ms']);
        return Number.isSafeInteger(asked) && asked > 0 ? Math.min(asked, MAX_TIMEOUT_MS) : this.config.callTimeoutMs;
    }

    /** The request body as text, refused past maxPayloadBytes before more of it is read. */
    protected body(request: HttpRequest): Promise<string> {
        const limit = this.config.maxPayloadBytes;
        const declared = Number(request.headers['content-length']);
        if (declared > limit) return Promise.reject(PayloadTooLarge.for(declared, limit));
        return new Promise((resolve, reject) => {
            const parts: Buffer[] = [];
            let size = 0;
            request.on('data', (part: Buffer) => {
                size += part.byteLength;
                if (size > limit) {
                    request.removeAllListeners('data');
                    request.resume();
                    return reject(PayloadTooLarge.for(size, limit));
                }
                parts.push(part);
            });
            request.once('end', () => resolve(Buffer.concat(parts).toString('utf8')));
            request.once('error', reject);
        });
    }
}
