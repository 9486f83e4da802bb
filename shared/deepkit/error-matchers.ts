/**
 * Deepkit errors Switchboard recognises by their text, because Deepkit throws them as plain `RpcError`s or strings
 * with no code. Every text matched is here; tests/deepkit/error-matchers.test.ts makes Deepkit throw each one and
 * checks it is still recognised, so an upgrade that rewords one fails there instead of silently turning a typed
 * error (NotFound, ValidationError, a config problem) back into an untyped one.
 */

/** `RpcServerAction` answers arguments that fail validation with this text, then the label and Deepkit's item list. */
export const VALIDATION_FAILURE_PREFIX = 'Validation error for arguments of ';

export function isArgumentValidationFailure(failure: unknown): failure is string {
    return typeof failure === 'string' && failure.startsWith(VALIDATION_FAILURE_PREFIX);
}

const UNKNOWN_CONTROLLER = /^No controller registered for id (.*)$/;
const UNKNOWN_ACTION = /^Action unknown (.*)$/;

/** The controller name in Deepkit's "No controller registered for id x", else undefined. */
export function unknownControllerIn(message: string): string | undefined {
    return UNKNOWN_CONTROLLER.exec(message)?.[1];
}

/** The action name in Deepkit's "Action unknown y", else undefined. */
export function unknownActionIn(message: string): string | undefined {
    return UNKNOWN_ACTION.exec(message)?.[1];
}

const COULD_NOT_CONNECT = /^(?:Could not connect: )+/;

/**
 * The cause alone: Deepkit's client starts an OfflineError's message with "Could not connect: " (twice over its own
 * WebSocket adapter, which says it first).
 */
export function withoutConnectPrefix(message: string): string {
    return message.replace(COULD_NOT_CONNECT, '');
}

const INVALID_MODULE_CONFIG = /Error: (\w+)\(\w+\): (.*)$/;

/**
 * The setting and problem in Deepkit's text for an invalid module config ("Configuration for module root is invalid.
 * … Error: port(maximum): Number needs to be …"), else undefined.
 */
export function invalidModuleConfigIn(message: string): { setting: string, problem: string } | undefined {
    const match = INVALID_MODULE_CONFIG.exec(message);
    return match ? { setting: match[1], problem: match[2] } : undefined;
}
