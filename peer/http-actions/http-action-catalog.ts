import { ClassType } from '@deepkit/core';
import { InjectorModule } from '@deepkit/injector';
import { getActions } from '@deepkit/rpc';
import { deserialize, getValidatorFunction, Guard, ReflectionClass, ReflectionKind, serialize, Type, TypeTuple, ValidationError, ValidationErrorItem } from '@deepkit/type';
import { LOCAL_ONLY, HTTP_VISIBLE, MalformedMessage, NotFound, HttpActionDescription } from '@switchboard/protocol';
import { boundedValidationError } from '@switchboard/protocol/internal';
import { jsonSchemaOf } from './json-schema';

/** A controller as the kernel registered it. */
export interface RegisteredController {
    controller: ClassType;
    module: InjectorModule;
}

/** One HTTP-visible action, with what it takes to decode its arguments and encode its result. */
export interface HttpAction {
    path: string;
    name: string;
    controller: RegisteredController;
    method: (...args: unknown[]) => unknown;
    parameters: TypeTuple;
    validate: Guard<unknown[]>;
    result: Type;
    /** The action's RPC groups and data, for the security class. */
    groups: string[];
    data: Record<string, unknown>;
}

/**
 * The actions of a peer's kernel marked `@httpVisible()`, found by controller path and action name. Anything else
 * is NotFound to an HTTP caller: unmarked actions, local-only ones, and actions answering a stream (HTTP answers one
 * value).
 */
export class HttpActionCatalog {
    /** The kernel's map of controller path → registration; set by the kernel that owns this catalog. */
    controllers: Map<string, RegisteredController> = new Map();
    protected actions = new Map<string, HttpAction | undefined>();

    find(path: string, name: string): HttpAction {
        const key = path + '\n' + name;
        let action = this.actions.get(key);
        if (action === undefined && !this.actions.has(key)) {
            action = this.load(path, name);
            // Only registered controllers are cached: a late `registerController` must be found later.
            if (this.controllers.has(path)) this.actions.set(key, action);
        }
        if (!action) throw new NotFound(`This peer serves no HTTP-visible action "${name}" on controller "${path}" (mark it with @httpVisible()).`, 'http-action');
        return action;
    }

    list(): HttpAction[] {
        const found: HttpAction[] = [];
        for (const [path, controller] of this.controllers) {
            for (const name of getActions(controller.controller).keys()) {
                const action = this.load(path, name);
                if (action) found.push(action);
            }
        }
        return found;
    }

    describe(): HttpActionDescription[] {
        return this.list().map(action => new HttpActionDescription(
            action.path,
            action.name,
            action.parameters.types.map((member, index) => ({ name: member.name ?? `arg${index}`, optional: !!member.optional, schema: JSON.stringify(jsonSchemaOf(member.type)) })),
            JSON.stringify(jsonSchemaOf(action.result)),
        ));
    }

    /**
     * The arguments of a JSON array, converted to the action's parameter types (dates from strings …) and validated
     * like any call's arguments: a ValidationError names each item that failed.
     */
    decodeArguments(action: HttpAction, argumentsJson: string): unknown[] {
        let raw: unknown;
        try {
            raw = JSON.parse(argumentsJson);
        } catch {
            throw new MalformedMessage('The body of an HTTP action call must be a JSON array of arguments.');
        }
        if (!Array.isArray(raw)) throw new MalformedMessage('The body of an HTTP action call must be a JSON array of arguments.');
        const expected = action.parameters.types.length;
        if (raw.length > expected) {
            throw boundedValidationError(new ValidationError([new ValidationErrorItem('', 'arguments', `${action.path}.${action.name} takes at most ${expected} arguments; got ${raw.length}.`)]));
        }
        let args: unknown[];
        try {
            args = deserialize(raw, { loosely: false }, undefined, undefined, action.parameters) as unknown[];
        } catch (error) {
            if (error instanceof ValidationError) throw boundedValidationError(error);
            throw new MalformedMessage(`The arguments could not be read as ${action.path}.${action.name} takes them.`);
        }
        const errors: ValidationErrorItem[] = [];
        action.validate(args, { errors });
        if (errors.length) throw boundedValidationError(new ValidationError(errors));
        return args;
    }

    encodeResult(action: HttpAction, result: unknown): string {
        return JSON.stringify(serialize(result, undefined, undefined, undefined, action.result) ?? null);
    }

    protected load(path: string, name: string): HttpAction | undefined {
        const controller = this.controllers.get(path);
        if (!controller) return;
        const marked = getActions(controller.controller).get(name);
        if (!marked || !marked.groups.includes(HTTP_VISIBLE) || marked.groups.includes(LOCAL_ONLY)) return;
        const reflection = ReflectionClass.from(controller.controller).getMethod(name);
        let result = reflection.getReturnType();
        if (result.kind === ReflectionKind.promise) result = result.type;
        if (isStream(result)) return;
        const parameters: TypeTuple = { kind: ReflectionKind.tuple, types: [] };
        for (const parameter of reflection.getParameters()) {
            parameters.types.push({ kind: ReflectionKind.tupleMember, parent: parameters, name: parameter.name, optional: parameter.isOptional() || undefined, type: parameter.getType() });
        }
        return {
            path, name, controller, result, parameters,
            groups: marked.groups, data: marked.data,
            method: controller.controller.prototype[name],
            validate: getValidatorFunction(undefined, parameters) as Guard<unknown[]>,
        };
    }
}

/** Observables, subjects, collections: answers of many values, which one HTTP response cannot carry. */
function isStream(type: Type): boolean {
    if (type.kind === ReflectionKind.union) return type.types.some(isStream);
    if (type.kind !== ReflectionKind.class) return false;
    let prototype = type.classType?.prototype;
    while (prototype) {
        if (typeof prototype.subscribe === 'function' || prototype.constructor?.name === 'Collection') return true;
        prototype = Object.getPrototypeOf(prototype);
    }
    return false;
}
