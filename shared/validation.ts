import { RpcMessage, RpcMessageBuilder, RpcServerAction } from '@deepkit/rpc';
import { ValidationError, ValidationErrorItem } from '@deepkit/type';
import { NotFound } from './errors';
import { isArgumentValidationFailure, unknownActionIn, unknownControllerIn } from './deepkit/error-matchers';

/** Longest text of an invalid value echoed back in a ValidationError; the caller sent the value and has it. */
const ECHOED_CHARS = 64;
/** Longest message of one item. Deepkit's messages are short; a custom validator's may quote the value. */
const ITEM_MESSAGE_CHARS = 256;
/** Items echoed at most: an array of a million invalid elements would otherwise fail with a million items. */
const ECHOED_ITEMS = 20;

/**
 * A ValidationError that is safe to send back: each item's value shortened (strings to 64 characters plus "…",
 * numbers and booleans as they are, binaries, objects and arrays dropped), messages and the item list capped.
 * Deepkit echoes the whole invalid value, so a 1 MB string argument would come back as a 1 MB error.
 */
export function boundedValidationError(error: ValidationError): ValidationError {
    const items = error.errors.slice(0, ECHOED_ITEMS).map(item => new ValidationErrorItem(
        shortened(item.path, ITEM_MESSAGE_CHARS), item.code, shortened(item.message, ITEM_MESSAGE_CHARS), echoable(item.value),
    ));
    return withoutStack(new ValidationError(items));
}

function echoable(value: unknown): unknown {
    if (typeof value === 'string') return shortened(value, ECHOED_CHARS);
    if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
    if (typeof value === 'bigint') return shortened(value.toString(), ECHOED_CHARS);
    return undefined;
}

function shortened(text: string, limit: number): string {
    return text.length > limit ? text.slice(0, limit) + '…' : text;
}

/** Deepkit's "No controller registered for id x" / "Action unknown y", as a NotFound a caller can catch. */
function typedLookupError(error: unknown): unknown {
    const message = error instanceof Error ? error.message : '';
    const controller = unknownControllerIn(message);
    if (controller !== undefined) return withoutStack(new NotFound(`This peer serves no controller "${controller}".`, 'controller'));
    const action = unknownActionIn(message);
    if (action !== undefined) return withoutStack(new NotFound(`This controller has no action "${action}".`, 'action'));
    return error;
}

function withoutStack<E extends Error>(error: E): E {
    error.stack = '';
    return error;
}

/**
 * Deepkit's server action, answering invalid arguments with a typed `ValidationError` (each item names its field)
 * instead of an untyped error string, and an unknown controller or action with NotFound. Only the failure path does extra work: it validates the arguments again to
 * recover the structured errors Deepkit flattened into text.
 */
export class ValidatingServerAction extends RpcServerAction {
    override async handleAction(message: RpcMessage, response: RpcMessageBuilder): Promise<void> {
        // An own property on the builder (same shape every call), not a prototype-chained copy of it: Deepkit's
        // handler reads the builder on every call and a per-call prototype made those reads slow.
        const error = response.error;
        response.error = (failure: Error | string) => {
            if (isArgumentValidationFailure(failure)) {
                const structured = this.explain(message);
                if (structured) return error.call(response, structured);
                // Deepkit's text lists every item; an argument with a million invalid elements makes it huge.
                return error.call(response, shortened(failure, ITEM_MESSAGE_CHARS * ECHOED_ITEMS));
            }
            return error.call(response, failure);
        };
        try {
            return await super.handleAction(message, response);
        } catch (error) {
            // Thrown past Deepkit's own error handling, so the security class must shape it for this caller here.
            throw this.security.transformError(typedLookupError(error) as Error);
        }
    }

    override async handleActionTypes(message: RpcMessage, response: RpcMessageBuilder): Promise<void> {
        try {
            return await super.handleActionTypes(message, response);
        } catch (error) {
            // Thrown past Deepkit's own error handling, so the security class must shape it for this caller here.
            throw this.security.transformError(typedLookupError(error) as Error);
        }
    }

    protected explain(message: RpcMessage): ValidationError | undefined {
        try {
            const call = message.parseBody<{ controller: string, method: string, args: any[] }>();
            const errors: ValidationErrorItem[] = [];
            this.loadTypes(call.controller, call.method).parametersValidate(call.args, { errors });
            if (!errors.length) return;
            return boundedValidationError(new ValidationError(errors));
        } catch {
            return;
        }
    }
}
