import { ClassType } from '@deepkit/core';
import { ControllerDefinition, rpcClass, RpcCache, RpcControllerAccess, RpcKernel, RpcKernelBaseConnection, RpcKernelConnection, RpcKernelSecurity, Session } from '@deepkit/rpc';
import { InjectorContext, InjectorModule, NormalizedProvider } from '@deepkit/injector';
import { EventDispatcher } from '@deepkit/event';
import { AccessDenied, InternalError, plainError, SwitchboardError, LOCAL_ONLY, HttpActionsApi } from '@switchboard/protocol';
import { boundedValidationError, ValidatingServerAction } from '@switchboard/protocol/internal';
import { ReflectionClass, ValidationError } from '@deepkit/type';
import { CallerContext } from './caller-context';
import { HttpActionCatalog } from './http-actions/http-action-catalog';
import { HttpActionsController } from './http-actions/http-actions-controller';

/** What a peer tells remote callers: actions of the `local-only` group are the app's own. */
export class PeerSecurity extends RpcKernelSecurity {
    /** One per calling connection (scope `rpc`), so it knows whether this caller decodes Switchboard's errors. */
    constructor(protected caller?: CallerContext) {
        super();
    }

    override async hasControllerAccess(session: Session, access: RpcControllerAccess, connection: RpcKernelBaseConnection): Promise<boolean> {
        if (access.actionGroups.includes(LOCAL_ONLY)) {
            // Thrown rather than returned, so the caller gets AccessDenied instead of Deepkit's untyped error.
            throw this.transformError(new AccessDenied(`${access.controllerName}.${access.actionName} is local-only: only the peer's own app may call it.`, 'local-only'));
        }
        return true;
    }

    /**
     * A remote caller gets the error's code and message, the stack stays in this process. Its class only if the
     * caller decodes ours: a stock Deepkit client that receives a class it has not loaded dies in its message handler.
     */
    override transformError(error: Error): Error {
        if (shaped.has(error)) return error;
        if (!(error instanceof SwitchboardError) && !(error instanceof ValidationError) && !declaredForTheWire(error)) {
            error = internalError(error, this.caller?.peerId);
        }
        error.stack = '';
        if (error instanceof SwitchboardError && !this.caller?.typedErrors) error = plainError(error);
        // An invalid megabyte argument must not come back as a megabyte error.
        else if (error instanceof ValidationError) error = boundedValidationError(error);
        shaped.add(error);
        return error;
    }
}

/** Errors already shaped for a caller: Deepkit may pass one through transformError twice. */
const shaped = new WeakSet<Error>();

/** An error class with an `@entity.name` is one its app declared for callers (Deepkit rebuilds it on their side). */
function declaredForTheWire(error: Error): boolean {
    try {
        return !!ReflectionClass.from(error.constructor as ClassType).name;
    } catch {
        return false;
    }
}

/**
 * Anything else (a stack overflow, an SQL error, a bug) stays here: the caller gets InternalError with a reference,
 * this process's log gets the detail under it.
 */
function internalError(error: Error, caller: string | undefined): InternalError {
    const reference = crypto.randomUUID().slice(0, 8);
    console.error(`Switchboard peer: a call from ${caller ? `"${caller}"` : 'an unregistered caller'} failed (reference ${reference}):`, error);
    return InternalError.for(reference);
}

export class PeerKernelConnection extends RpcKernelConnection {
    protected override actionHandler = new ValidatingServerAction(this.stats, this.cache, this, this.controllers, this.injector, this.eventDispatcher, this.security, this.sessionState, this.logger);

    /** This caller's DI scope: the HTTP gateway resolves the controllers it calls for the caller from it. */
    get scope(): InjectorContext {
        return this.injector;
    }

    /** What the lean call path (calls/lean-serving.ts) reads of this connection: Deepkit keeps it protected. */
    leanView(): LeanConnectionView {
        return this.view ??= {
            // An app's own security class may refuse what ours grants: its callers take Deepkit's path.
            ownSecurity: this.security.constructor === PeerSecurity,
            security: this.security, events: this.eventDispatcher, cache: this.cache, injector: this.injector, id: this.id,
        };
    }

    protected view?: LeanConnectionView;
}

export interface LeanConnectionView {
    ownSecurity: boolean;
    security: RpcKernelSecurity;
    events: EventDispatcher;
    cache: RpcCache;
    injector: InjectorContext;
    /** This connection's ID: the source of the answers it writes. */
    id: Uint8Array;
}

/**
 * The kernel that serves a peer's controllers to remote callers: one kernel connection per caller, typed
 * validation errors, local-only actions refused, and `CallerContext` injectable in controllers.
 */
export class PeerKernel extends RpcKernel {
    protected override RpcKernelConnection = PeerKernelConnection;

    constructor(providers: NormalizedProvider[] = []) {
        const httpActions = new HttpActionCatalog();
        super([
            { provide: CallerContext, scope: 'rpc', useValue: undefined },
            { provide: RpcKernelSecurity, useClass: PeerSecurity, scope: 'rpc' },
            { provide: HttpActionCatalog, useValue: httpActions },
            ...providers,
        ]);
        // Every peer serves its `@httpVisible()` actions to brokers calling for HTTP clients (peer/http-actions).
        httpActions.controllers = this.controllers;
        this.registerController(HttpActionsController, HttpActionsApi);
    }

    /**
     * Deepkit can only add a controller before the kernel's injector is built (at the first incoming call). A peer
     * may expose controllers at any time, so a late one gets a module of its own under the root module, which
     * still sees CallerContext and the peer's services.
     */
    override registerController(controller: ClassType, id?: string | ControllerDefinition<any>, module?: InjectorModule): void {
        if (module || !this.injector.rootModule.injector) return super.registerController(controller, id, module);
        const path = typeof id === 'string' ? id : id?.path ?? rpcClass._fetch(controller)?.getPath();
        if (!path) throw new Error(`Controller ${controller.name} has no @rpc.controller() path and none was given.`);
        const own = new InjectorModule([{ provide: controller, scope: 'rpc' }]);
        own.setParent(this.injector.rootModule);
        this.controllers.set(path, { controller, module: own });
    }
}
