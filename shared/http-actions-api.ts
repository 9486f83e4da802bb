import { ControllerSymbol } from '@deepkit/rpc';
import { entity, MaxLength } from '@deepkit/type';

/**
 * The session name of a call that entered a broker over HTTP is this prefix plus the caller's session (the token
 * name, or `anonymous`): `CallerContext.session` is `http:anonymous` and its `peerId` unset.
 */
export const HTTP_SESSION_PREFIX = 'http:';

/** Longest controller path and action name an HTTP call may name. */
export const MAX_HTTP_NAME = 256;

/** One argument of an HTTP-visible action. */
export interface HttpParameterDescription {
    name: string & MaxLength<256>;
    optional: boolean;
    /** A JSON Schema of the argument's type, as JSON text. */
    schema: string & MaxLength<65536>;
}

/** An action a peer serves over HTTP, with its argument and result types (what `GET /peers/<id>/http-actions` lists). */
@entity.name('@switchboard/HttpActionDescription')
export class HttpActionDescription {
    constructor(
        public controller: string & MaxLength<256>,
        public action: string & MaxLength<256>,
        public parameters: HttpParameterDescription[] & MaxLength<64> = [],
        /** A JSON Schema of the result, as JSON text. */
        public result: string & MaxLength<65536> = '{}',
    ) {
    }
}

/**
 * The gateway every SDK peer serves: the broker calls it on behalf of HTTP clients. Arguments and results travel as
 * JSON text; the peer decodes them against the action's own parameter and return types and validates them, so the
 * broker never needs the types and cannot reach an action that is not marked `@httpVisible()`.
 */
export interface HttpActionsApi {
    /** Runs `controller.action(...arguments)` and answers its result as JSON; NotFound for an unmarked action. */
    call(controller: string & MaxLength<typeof MAX_HTTP_NAME>, action: string & MaxLength<typeof MAX_HTTP_NAME>, argumentsJson: string): Promise<string>;

    /** The actions this peer serves over HTTP. */
    list(): HttpActionDescription[];
}

export const HttpActionsApi = ControllerSymbol<HttpActionsApi>('switchboard/http-actions', [HttpActionDescription]);
