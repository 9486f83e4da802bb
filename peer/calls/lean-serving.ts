import {
    Collection,
    createRpcMessageSourceDest,
    EntitySubject,
    onRpcAction,
    onRpcControllerAccess,
    RpcCacheAction,
    RpcError,
    rpcEncodeError,
    rpcError,
    RpcMessage,
    RpcMessageDefinition,
    RpcTypes,
} from '@deepkit/rpc';
import { getBSONDeserializer } from '@deepkit/bson';
import { EventDispatcher, EventToken } from '@deepkit/event';
import { ReflectionKind, Type, typeOf, ValidationErrorItem } from '@deepkit/type';
import { LOCAL_ONLY } from '@switchboard/protocol';
import { isPrototypeOfBase } from '@deepkit/core';
import { Observable } from 'rxjs';
import type { PeerKernelConnection } from '../kernel';

/** The header of an Action frame's body: which action, without its arguments. */
interface ActionName {
    controller: string;
    method: string;
}

const readActionName = getBSONDeserializer<ActionName>();
const errorType = typeOf<rpcError>();
/** Answers Deepkit sends as something else than a plain value (ProgressTracker is an Observable). */
const streamClasses = [Observable, Collection, EntitySubject];

/**
 * The served side of the lean call path: a plain call to an action Deepkit has served once on this kernel (so its
 * cached entry — types, decoder, validator, DI resolver — exists) is answered here, without Deepkit's per-call
 * machinery (message builder, awaited access check, event dispatch nobody listens to, a chain of promises).
 *
 * Only the happy path is taken here: arguments that do not decode or validate, a first call, a local-only action, a
 * stream, collection or entity answer, a caller whose security is not the peer's own, or listeners of the controller
 * access event — all go to Deepkit (`false`), which answers exactly as before (the same ValidationError). Deciding
 * happens before the action runs, so nothing runs twice.
 */
export class LeanServing {
    /**
     * Serves `message` (an Action frame on the peer route) if it can; `write` gets the answer. False: the caller
     * must give the frame to Deepkit.
     */
    serve(message: RpcMessage, connection: PeerKernelConnection, write: (answer: RpcMessageDefinition) => void): boolean {
        if (message.type !== RpcTypes.Action || message.composite) return false;
        const kernel = connection.leanView();
        if (!kernel.ownSecurity || listened(kernel.events, onRpcControllerAccess)) return false;
        let name: ActionName;
        try {
            name = readActionName(message.getBuffer(), message.bodyOffset);
        } catch {
            return false;
        }
        const cached = kernel.cache.actions[name.controller + '!' + name.method];
        if (!cached) return false;
        const plan = planFor(cached);
        if (!plan) return false;
        let args: unknown[];
        try {
            const body = message.decodeBody(plan.bodyDecoder) as { args?: unknown };
            if (!Array.isArray(body.args)) return false;
            args = body.args;
        } catch {
            return false;
        }
        const errors: ValidationErrorItem[] = [];
        plan.parametersValidate(args, { errors });
        if (errors.length) return false;
        const instance = cached.resolver(kernel.injector.scope);
        if (!instance) return false;

        const source = message.getSource();
        // Listeners of onRpcAction (e.g. the links feature) get the events Deepkit would send; nobody else pays for them.
        const tracing = listened(kernel.events, onRpcAction);
        const timing = tracing ? { start: performance.now(), end: 0 } : undefined!;
        const context = tracing ? { connection, injector: kernel.injector } : undefined!;
        if (tracing) void kernel.events.dispatch(onRpcAction, () => ({ phase: 'start', context, timing, controller: cached.controller }), kernel.injector);
        const fail = (error: unknown) => {
            if (tracing) {
                timing.end = performance.now();
                void kernel.events.dispatch(onRpcAction, () => ({ phase: 'fail', error: error as Error, context, timing, controller: cached.controller }), kernel.injector);
            }
            const shaped = kernel.security.transformError(error instanceof Error ? error : new RpcError(String(error)));
            write(createRpcMessageSourceDest(message.id, RpcTypes.Error, kernel.id, source, rpcEncodeError(shaped), errorType));
        };
        const answer = (result: unknown) => {
            if (tracing) {
                timing.end = performance.now();
                void kernel.events.dispatch(onRpcAction, () => ({ phase: 'success', context, timing, controller: cached.controller }), kernel.injector);
            }
            try {
                write(createRpcMessageSourceDest(message.id, RpcTypes.ResponseActionSimple, kernel.id, source, { v: result }, plan.resultSchema));
            } catch (error) {
                // As Deepkit words it: the answer did not fit the action's declared return type.
                fail(new RpcError(`Action ${cached.label} return type serialization error: ${error instanceof Error ? error.message : error}`));
            }
        };
        let result: unknown;
        try {
            result = cached.fn.apply(instance, args);
        } catch (error) {
            fail(error);
            return true;
        }
        if (result instanceof Promise) result.then(answer, fail);
        else answer(result);
        return true;
    }
}

/** The compiled parts of an action's entry the lean path runs: shared by every kernel of the process serving it. */
interface LeanPlan {
    bodyDecoder: RpcCacheAction['bodyDecoder'];
    parametersValidate: RpcCacheAction['types']['parametersValidate'];
    resultSchema: Type;
}

/** Per entry of a kernel's action cache: its plan, or null when the action may never take the lean path. */
const plans = new WeakMap<RpcCacheAction, LeanPlan | null>();
/**
 * The first plan per controller class and method. Deepkit compiles an entry's decoder, validator and (on first
 * use) result serializer per kernel, but derives them from the class and method alone; a process serving one
 * controller on many kernels (a fan-out's receivers in one process, or a test) would otherwise run a thousand
 * copies of the same code once each, none ever warm enough for V8 to optimise.
 */
const shared = new WeakMap<object, Map<string, LeanPlan>>();

function planFor(cached: RpcCacheAction): LeanPlan | null {
    let plan = plans.get(cached);
    if (plan !== undefined) return plan;
    plan = null;
    if (leanable(cached)) {
        const classType = cached.controller.controllerClassType as object;
        let methods = shared.get(classType);
        if (!methods) shared.set(classType, methods = new Map());
        plan = methods.get(cached.controller.actionName) ?? null;
        if (!plan) {
            plan = { bodyDecoder: cached.bodyDecoder, parametersValidate: cached.types.parametersValidate, resultSchema: cached.types.resultSchema };
            methods.set(cached.controller.actionName, plan);
        }
    }
    plans.set(cached, plan);
    return plan;
}

/** Whether anything listens to `token` (Deepkit's hasListeners turns true once an event was dispatched at all). */
function listened(events: EventDispatcher, token: EventToken<any>): boolean {
    return events.getListeners(token).length > 0;
}

/**
 * Whether an action's answer is always a plain value: strictly typed (Deepkit's default), not local-only (Deepkit's
 * access check throws AccessDenied for those), and declared to return neither a stream, a collection or an entity
 * subject nor something that could be one at run time (any, unknown, a class).
 */
function leanable(cached: RpcCacheAction): boolean {
    // The entry's shape is Deepkit's (RpcCache); should an upgrade change it, calls take Deepkit's path again.
    if (typeof cached.fn !== 'function' || typeof cached.resolver !== 'function' || typeof cached.bodyDecoder !== 'function') return false;
    if (typeof cached.types?.parametersValidate !== 'function' || !cached.types.resultSchema || !cached.action) return false;
    if (typeof cached.controller?.controllerClassType !== 'function' || typeof cached.controller.actionName !== 'string') return false;
    if (!cached.action.strictSerialization || cached.types.mode !== 'arbitrary') return false;
    if (cached.controller.actionGroups.includes(LOCAL_ONLY)) return false;
    return plainValue(cached.types.type);
}

function plainValue(type: Type): boolean {
    switch (type.kind) {
        case ReflectionKind.any:
        case ReflectionKind.unknown:
        case ReflectionKind.promise:
            return false;
        case ReflectionKind.class:
            // Binaries, dates and the app's classes are values; a stream or collection declared as one is not.
            return !streamClasses.some(base => isPrototypeOfBase(type.classType, base));
        case ReflectionKind.union:
            return type.types.every(plainValue);
        default:
            return true;
    }
}
