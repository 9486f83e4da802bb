import { RpcMessage, RpcMessageBuilder, RpcServerAction } from '@deepkit/rpc';
import { ValidationError, ValidationErrorItem } from '@deepkit/type';
import { NotFound } from './errors';

const VALIDATION_FAILURE = 'Validation error for arguments of ';

/** Deepkit's "No controller registered for id x" / "Action unknown y", as a NotFound a caller can catch. */
function typedLookupError(error: unknown): unknown {
    const message = error instanceof Error ? error.message : '';
    const controller = /^No controller registered for id (.*)$/.exec(message);
    if (controller) return withoutStack(new NotFound(`This peer serves no controller "${controller[1]}".`, 'controller'));
    const action = /^Action unknown (.*)$/.exec(message);
    if (action) return withoutStack(new NotFound(`This controller has no action "${action[1]}".`, 'action'));
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
    async handleAction(message: RpcMessage, response: RpcMessageBuilder): Promise<void> {
        const typed = Object.create(response) as RpcMessageBuilder;
        typed.error = (error: Error | string) => {
            if (typeof error === 'string' && error.startsWith(VALIDATION_FAILURE)) {
                const structured = this.explain(message);
                if (structured) return response.error(structured);
            }
            return response.error(error);
        };
        try {
            return await super.handleAction(message, typed);
        } catch (error) {
            throw typedLookupError(error);
        }
    }

    async handleActionTypes(message: RpcMessage, response: RpcMessageBuilder): Promise<void> {
        try {
            return await super.handleActionTypes(message, response);
        } catch (error) {
            throw typedLookupError(error);
        }
    }

    protected explain(message: RpcMessage): ValidationError | undefined {
        try {
            const call = message.parseBody<{ controller: string, method: string, args: any[] }>();
            const errors: ValidationErrorItem[] = [];
            this.loadTypes(call.controller, call.method).parametersValidate(call.args, { errors });
            if (!errors.length) return;
            return withoutStack(new ValidationError(errors));
        } catch {
            return;
        }
    }
}
