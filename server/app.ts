import { App } from '@deepkit/app';
import { FrameworkModule, RpcControllers, RpcServer } from '@deepkit/framework';
import { InjectorContext, provide } from '@deepkit/injector';
import { Logger, LoggerInterface } from '@deepkit/logger';
import { RpcKernel, RpcKernelSecurity } from '@deepkit/rpc';
import { assertValidConfig, BrokerConfig } from './config';
import { BrokerServices } from './connection';
import { BrokerController } from './controllers/broker-controller';
import { HealthController } from './controllers/health-controller';
import { DashboardController } from './controllers/dashboard-controller';
import { DrainController } from './controllers/drain-controller';
import { DashboardFeed } from './dashboard/dashboard-feed';
import { InProcessPeerExchange } from './exchange/in-process-exchange';
import { PeerExchange } from './exchange/peer-exchange';
import type { ClusterBus, ClusterBusProvider } from './cluster/bus/cluster-bus';
import { BrokerKernel } from './kernel';
import { AuditLog } from './registry/audit-log';
import { RegistryDatabase } from './registry/database';
import { PeerRegistry } from './registry/peer-registry';
import { PeerTokenStore, TokenStore } from './registry/token-store';
import { ClusterState } from './cluster/cluster-state';
import { WriteBehind } from './registry/write-behind';
import { SwitchboardSecurity } from './security';
import { BrokerStats } from './stats';
import { BrokerWebSocketServer } from './websocket-server';
import { TokenRevocationWatcher } from './token-revocation-watcher';
import { BrokerHttpServer, BrokerRuntime, TokenDatabaseHandle } from './runtime';
import { brokerCommands } from './commands';
import { HttpActionGateway } from './http-actions/http-action-gateway';
import { HttpActionsController } from './http-actions/http-actions-controller';

/**
 * The broker as a Deepkit App: DI wiring, the typed config (`SWITCHBOARD_*` environment variables when started
 * through `server/main.ts`), RPC and HTTP controllers, and CLI commands.
 */
/** What a broker takes besides its config: objects, not settings. */
export interface BrokerAppOptions {
    /**
     * The bus of a cluster whose brokers share one process (tests: one `new MemoryBus()` for all of them); the broker
     * joins the cluster `config.cluster` on it instead of on NATS, its tokens and registry history included.
     */
    clusterBus?: ClusterBusProvider;
}

/** @internal The broker's Deepkit app, unstarted (the `switchboard` command and the tests); embed with startBroker. */
export function createBrokerApp(config: Partial<BrokerConfig> = {}, options: BrokerAppOptions = {}) {
    const http = new BrokerHttpServer();
    const app = new App({
        config: BrokerConfig,
        controllers: [
            BrokerController, HealthController, DashboardController, DrainController, HttpActionsController,
            ...brokerCommands,
        ],
        providers: [
            { provide: BrokerHttpServer, useValue: http },
            BrokerRuntime,
            BrokerStats,
            // With a NATS URL the broker joins a cluster; without, it is exactly the single process it always was.
            provide<PeerExchange>({ useFactory: (config: BrokerConfig, logger: Logger) => config.natsUrl || options.clusterBus ? clusterModules().createExchange(config, logger.scoped('cluster'), options.clusterBus?.connect('exchange')) : new InProcessPeerExchange(config.brokerId || undefined) }),
            { provide: RegistryDatabase, useFactory: (config: BrokerConfig) => new RegistryDatabase(config.database) },
            TokenDatabaseHandle,
            { provide: TokenStore, useFactory: (handle: TokenDatabaseHandle) => new TokenStore(handle.database) },
            // In a cluster, tokens and the registry's history are the cluster's (JetStream KV), not one broker's.
            { provide: ClusterState, useFactory: (config: BrokerConfig) => new ClusterState(config.natsUrl, config.cluster, 'state', options.clusterBus?.connect('state')) },
            provide<PeerTokenStore>({ useFactory: (config: BrokerConfig, tokens: TokenStore, state: ClusterState) => config.natsUrl || options.clusterBus ? new (clusterModules().ClusterTokenStore)(state) : tokens }),
            { provide: WriteBehind, useFactory: (database: RegistryDatabase, logger: Logger) => new WriteBehind(database, logger) },
            AuditLog,
            {
                provide: PeerRegistry,
                useFactory: (database: RegistryDatabase, exchange: PeerExchange, writer: WriteBehind, config: BrokerConfig, logger: Logger, state: ClusterState) =>
                    new PeerRegistry(database, exchange, writer, config, logger, config.natsUrl || options.clusterBus ? new (clusterModules().ClusterPeerRecords)(state, exchange.brokerId, logger.scoped('cluster')) : undefined),
            },
            DashboardFeed,
            TokenRevocationWatcher,
            BrokerServices,
            HttpActionGateway,
            { provide: RpcKernelSecurity, useClass: SwitchboardSecurity, scope: 'rpc' },
            { provide: RpcServer, useClass: BrokerWebSocketServer },
            {
                provide: RpcKernel,
                useFactory(controllers: RpcControllers, injector: InjectorContext, logger: Logger, services: BrokerServices) {
                    const kernel = new BrokerKernel(injector, logger.scoped('rpc'), services);
                    for (const [name, info] of controllers.controllers.entries()) kernel.registerController(info.controller, name, info.module);
                    return kernel;
                },
            },
        ],
        listeners: [TokenRevocationWatcher],
        imports: [new FrameworkModule({ server: http.server, httpLog: false, logStartup: false })],
    });
    if (Object.keys(config).length) app.configure(config);
    return app;
}

/**
 * The cluster's classes, required by a broker given a NATS URL: a single broker never loads them, nor the NATS client
 * under them (about 70 modules).
 */
function clusterModules() {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const { NatsPeerExchange, natsExchangeOptions } = require('./cluster/nats-exchange') as typeof import('./cluster/nats-exchange');
    const { ClusterPeerExchange } = require('./cluster/cluster-exchange') as typeof import('./cluster/cluster-exchange');
    const { ClusterTokenStore } = require('./cluster/cluster-token-store') as typeof import('./cluster/cluster-token-store');
    const { ClusterPeerRecords } = require('./cluster/cluster-peer-records') as typeof import('./cluster/cluster-peer-records');
    /* eslint-enable @typescript-eslint/no-require-imports */
    return {
        createExchange: (config: BrokerConfig, logger: LoggerInterface, bus?: ClusterBus) => bus
            ? new ClusterPeerExchange(natsExchangeOptions(config), bus, logger)
            : new NatsPeerExchange(natsExchangeOptions(config), logger),
        ClusterTokenStore,
        ClusterPeerRecords,
    };
}

export interface RunningBroker {
    /** @internal The Deepkit app and the broker's parts, for Switchboard's own tests and tools. */
    readonly app: ReturnType<typeof createBrokerApp>;
    /** @internal */
    readonly runtime: BrokerRuntime;
    /** WebSocket URL peers connect to, e.g. `ws://127.0.0.1:41234`. */
    readonly url: string;
    readonly httpUrl: string;
    readonly port: number;
    close(): Promise<void>;
}

/** Starts a broker in this process. With `port: 0` it picks a free port; read it from `.port` or `.url`. */
export async function startBroker(config: Partial<BrokerConfig> = {}, options: BrokerAppOptions = {}): Promise<RunningBroker> {
    assertValidConfig(Object.assign(new BrokerConfig, config));
    const app = createBrokerApp(config, options);
    const runtime = app.get(BrokerRuntime);
    await runtime.start();
    return {
        app,
        runtime,
        url: runtime.url,
        httpUrl: runtime.httpUrl,
        port: runtime.port,
        close: () => runtime.stop(),
    };
}
