import { InjectorContext } from '@deepkit/injector';
import { rpc, RpcKernelConnection, RpcKernelSecurity, SessionState } from '@deepkit/rpc';
import { AccessDenied, HttpActionDescription, HttpActionsApi, MAX_HTTP_NAME } from '@switchboard/protocol';
import { MaxLength } from '@deepkit/type';
import { HttpActionCatalog } from './http-action-catalog';

/** What the gateway needs of the caller's kernel connection: its DI scope (PeerKernelConnection.scope). */
interface ScopedConnection {
    readonly scope: InjectorContext;
}

/**
 * The gateway through which a broker calls this peer's `@httpVisible()` actions for HTTP clients. The action runs
 * in the calling connection's own scope, so its controller sees the same CallerContext (session `http:<name>`, no
 * peer ID) any remote caller would; arguments are decoded and validated against the action's own types here, at
 * the target, and unmarked actions are NotFound whatever the broker asked.
 */
@rpc.controller(HttpActionsApi)
export class HttpActionsController implements HttpActionsApi {
    constructor(
        protected catalog: HttpActionCatalog,
        protected connection: RpcKernelConnection,
        protected security: RpcKernelSecurity,
        protected sessionState: SessionState,
    ) {
    }

    @rpc.action()
    async call(controller: string & MaxLength<typeof MAX_HTTP_NAME>, action: string & MaxLength<typeof MAX_HTTP_NAME>, argumentsJson: string): Promise<string> {
        const found = this.catalog.find(controller, action);
        // The peer's security class judges the action itself, as it would a direct call (an app may install its own).
        const access = { controllerName: controller, controllerClassType: found.controller.controller, actionName: action, actionGroups: found.groups, actionData: found.data };
        if (!await this.security.hasControllerAccess(this.sessionState.getSession(), access, this.connection)) {
            throw new AccessDenied(`${controller}.${action} refused this caller.`, 'controller-access');
        }
        const args = this.catalog.decodeArguments(found, argumentsJson);
        const scope = (this.connection as unknown as ScopedConnection).scope;
        const instance = scope.get(found.controller.controller, found.controller.module);
        const result = await found.method.apply(instance, args);
        return this.catalog.encodeResult(found, result);
    }

    @rpc.action()
    list(): HttpActionDescription[] {
        return this.catalog.describe();
    }
}
