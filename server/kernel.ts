// Deepkit's BSON writer copies binaries byte by byte; this installs a block copy (see the module).
import '@switchboard/protocol/internal';
import {
    ForwardedRpcStats,
    onRpcConnection,
    RpcKernel,
    RpcKernelBaseConnection,
    RpcKernelConnection,
    RpcKernelSecurity,
    RpcPeerExchange,
    TransportConnection,
} from '@deepkit/rpc';
import { InjectorContext } from '@deepkit/injector';
import { Logger } from '@deepkit/logger';
import { BrokerConnection, BrokerServices } from './connection';
import { SwitchboardSecurity } from './security';

/**
 * Deepkit's connection registers itself with a stock `RpcPeerExchange`; ours attaches to the Switchboard exchange
 * instead, so this one is never asked anything.
 */
class UnusedStockExchange extends RpcPeerExchange {
    override register(): void {
    }

    override async deregister(): Promise<void> {
    }
}

/** The broker's RPC kernel: Deepkit's kernel, with connections that gate and route through the peer exchange. */
export class BrokerKernel extends RpcKernel {
    protected unusedExchange = new UnusedStockExchange();

    constructor(injector: InjectorContext, logger: Logger, protected services: BrokerServices) {
        super(injector, logger);
    }

    override createConnection(transport: TransportConnection, injector?: InjectorContext): RpcKernelBaseConnection {
        if (!injector) injector = this.injector.createChildScope('rpc');
        const security = injector.get(RpcKernelSecurity);
        if (!(security instanceof SwitchboardSecurity)) throw new Error('The broker needs SwitchboardSecurity (or a subclass) as RpcKernelSecurity.');

        const connection = new BrokerConnection(
            new ForwardedRpcStats(this.stats),
            this.logger.scoped('rpc:connection'),
            transport,
            this.connections,
            injector,
            this.getEventDispatcher(),
            this.cache,
            this.controllers,
            security,
            this.unusedExchange,
        );
        connection.attachTo(this.services, security);
        injector.set(RpcKernelConnection, connection);
        injector.set(RpcKernelBaseConnection, connection);
        for (const listener of this.onConnectionListeners) listener(connection, injector, this.logger);
        this.getEventDispatcher().dispatch(onRpcConnection, { context: { connection, injector } });
        return connection;
    }
}
