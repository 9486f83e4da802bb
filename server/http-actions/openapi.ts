import { HttpActionDescription } from '@switchboard/protocol';

type Schema = Record<string, unknown>;

/** JSON Schema text from a peer, or "any value" when it does not parse (the peer is not trusted to send JSON). */
function parsed(schema: string): Schema {
    try {
        const value = JSON.parse(schema);
        return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {};
    } catch {
        return {};
    }
}

const ERROR_RESPONSE = {
    description: 'A typed error: `code` is stable (VALIDATION_ERROR, ACCESS_DENIED, PEER_NOT_FOUND, NOT_FOUND, PEER_OFFLINE, TIMEOUT, PAYLOAD_TOO_LARGE, …).',
    content: { 'application/json': { schema: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, reason: { type: 'string' }, errors: { type: 'array' } }, required: ['code', 'message'] } } },
};

/**
 * An OpenAPI 3.1 document of the actions `peerId` serves over HTTP: one POST operation per action, whose request
 * body is the JSON array of its arguments (a tuple schema, names in the description) and whose answer is its result.
 */
export function openApiDocument(peerId: string, actions: HttpActionDescription[]): Schema {
    const paths: Record<string, Schema> = {};
    for (const action of actions) {
        const parameters = action.parameters.map(parameter => ({ ...parsed(parameter.schema), title: parameter.name }));
        const required = action.parameters.filter(parameter => !parameter.optional).length;
        paths[`/peers/${encodeURIComponent(peerId)}/${action.controller}/${action.action}`] = {
            post: {
                operationId: `${action.controller}.${action.action}`,
                summary: `${action.controller}.${action.action}(${action.parameters.map(parameter => parameter.name + (parameter.optional ? '?' : '')).join(', ')})`,
                requestBody: {
                    required: true,
                    content: { 'application/json': { schema: { type: 'array', prefixItems: parameters, minItems: required, maxItems: parameters.length } } },
                },
                responses: {
                    200: { description: 'The result', content: { 'application/json': { schema: parsed(action.result) } } },
                    400: ERROR_RESPONSE, 401: ERROR_RESPONSE, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE,
                    413: ERROR_RESPONSE, 429: ERROR_RESPONSE, 503: ERROR_RESPONSE, 504: ERROR_RESPONSE,
                },
            },
        };
    }
    return {
        openapi: '3.1.0',
        info: { title: `Actions of peer "${peerId}" over HTTP`, version: '1' },
        components: { securitySchemes: { peerToken: { type: 'http', scheme: 'bearer' } } },
        security: [{}, { peerToken: [] }],
        paths,
    };
}
