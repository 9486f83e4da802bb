import { RpcMessage, RpcMessageBuilder, RpcServerAction } from '@deepkit/rpc';
import { ValidationError, ValidationErrorItem } from '@deepkit/type';

const VALIDATION_FAILURE = 'Validation error for arguments of ';

/**
 * Deepkit's server action, answering invalid arguments with a typed `ValidationError` (each item names its field)
 * instead of an untyped error string. Only the failure path does extra work: it validates the arguments again to
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
        return super.handleAction(message, typed);
    }

    protected explain(message: RpcMessage): ValidationError | undefined {
        try {
            const call = message.parseBody<{ controller: string, method: string, args: any[] }>();
            const errors: ValidationErrorItem[] = [];
            this.loadTypes(call.controller, call.method).parametersValidate(call.args, { errors });
            if (!errors.length) return;
            const error = new ValidationError(errors);
            error.stack = '';
            return error;
        } catch {
            return;
        }
    }
}
