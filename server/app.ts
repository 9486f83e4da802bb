import { createServer, Server } from 'http';
import { AddressInfo } from 'net';
import { App } from '@deepkit/app';
import { ApplicationServer, FrameworkModule, RpcControllers, RpcServer } from '@deepkit/framework';
import { InjectorContext } from '@deepkit/injector';
import { Logger, LoggerLevel } from '@deepkit/logger';
import { RpcKernel, RpcKernelSecurity } from '@deepkit/rpc';
import { provide } from '@deepkit/injector';
import { validate } from '@deepkit/type';
import { BrokerConfig, environmentName, flagName } from './config';
import { BrokerServices } from './connection';
import { BrokerController } from './controllers/broker-controller';
import { HealthController } from './controllers/health-controller';
import { InProcessPeerExchange } from './exchange/in-process-exchange';
import { PeerExchange } from './exchange/peer-exchange';
import { BrokerKernel } from './kernel';
import { AuditLog } from './registry/audit-log';
import { RegistryDatabase, TokenDatabase } from './registry/database';
import { PeerRegistry } from './registry/peer-registry';
import { TokenStore } from './registry/token-store';
import { WriteBehind } from './registry/write-behind';
import { SwitchboardSecurity } from './security';
import { BrokerStats } from './stats';
import { BrokerWebSocketServer } from './websocket-server';
import { AuditCommand, PeersCommand, StartCommand, TokenCreateCommand, TokenListCommand, TokenRevokeCommand } from './commands';

/** A setting that does not validate. The message names it as the environment and the CLI spell it. */
export class ConfigError extends Error {
    constructor(public readonly setting: string, problem: string) {
        super(`Invalid setting "${setting}" (${environmentName(setting)} or ${flagName(setting)}): ${problem}`);
    }
}

export function assertValidConfig(config: BrokerConfig): void {
    const [first] = validate<BrokerConfig>(config);
    if (first) throw new ConfigError(first.path, `${first.message} (got ${JSON.stringify(first.value)})`);
}

/** The http server the framework serves HTTP and WebSocket RPC on; the runtime decides when it listens. */
export class BrokerHttpServer {
    readonly server: Server = createServer();
}

/** Starts and stops everything in order, for the `start` command and for embedding (tests, the test kit). */
export class BrokerRuntime {
    protected started = false;
    protected stopped = false;

    constructor(
        public readonly config: BrokerConfig,
        protected http: BrokerHttpServer,
        protected applicationServer: ApplicationServer,
        protected registry: PeerRegistry,
        protected exchange: PeerExchange,
        protected tokenDatabase: TokenDatabaseHandle,
        protected registryDatabase: RegistryDatabase,
        protected logger: Logger,
    ) {
    }

    get port(): number {
        return (this.http.server.address() as AddressInfo).port;
    }

    get url(): string {
        return `ws://${this.config.host}:${this.port}`;
    }

    get httpUrl(): string {
        return `http://${this.config.host}:${this.port}`;
    }

    async start(): Promise<void> {
        if (this.started) return;
        this.started = true;
        assertValidConfig(this.config);
        this.logger.level = LoggerLevel[this.config.logLevel];
        await this.tokenDatabase.migrate();
        await this.registry.open();
        await this.exchange.start();
        await new Promise<void>((resolve, reject) => {
            this.http.server.once('error', reject);
            this.http.server.listen(this.config.port, this.config.host, () => {
                this.http.server.off('error', reject);
                resolve();
            });
        });
        await this.applicationServer.start({ listenOnSignals: false });
        this.logger.log(`Switchboard broker listening on ${this.url} (auth: ${this.config.auth}, database: ${this.config.database})`);
    }

    /** Closes every connection, marks all peers offline, writes pending registry and audit rows. Safe to call twice. */
    async stop(): Promise<void> {
        if (!this.started || this.stopped) return;
        this.stopped = true;
        await this.applicationServer.close();
        await this.registry.close();
        await this.exchange.stop();
        await new Promise<void>(resolve => this.http.server.close(() => resolve()));
        this.tokenDatabase.disconnect();
        this.registryDatabase.disconnect();
    }
}

/** The token database: the registry's own, or a separate file (`tokenDatabase`). */
export class TokenDatabaseHandle {
    readonly separate?: TokenDatabase;

    constructor(config: BrokerConfig, registry: RegistryDatabase) {
        if (config.tokenDatabase) this.separate = new TokenDatabase(config.tokenDatabase);
        this.database = this.separate ?? registry;
    }

    readonly database: RegistryDatabase | TokenDatabase;

    async migrate(): Promise<void> {
        await this.database.migrate();
    }

    disconnect(): void {
        this.separate?.disconnect();
    }
}

/**
 * The broker as a Deepkit App: DI wiring, the typed config (`SWITCHBOARD_*` environment variables when started
 * through `server/main.ts`), RPC and HTTP controllers, and CLI commands.
 */
export function createBrokerApp(config: Partial<BrokerConfig> = {}) {
    const http = new BrokerHttpServer();
    const app = new App({
        config: BrokerConfig,
        controllers: [
            BrokerController, HealthController,
            StartCommand, PeersCommand, TokenCreateCommand, TokenRevokeCommand, TokenListCommand, AuditCommand,
        ],
        providers: [
            { provide: BrokerHttpServer, useValue: http },
            BrokerRuntime,
            BrokerStats,
            provide<PeerExchange>(InProcessPeerExchange),
            { provide: RegistryDatabase, useFactory: (config: BrokerConfig) => new RegistryDatabase(config.database) },
            TokenDatabaseHandle,
            { provide: TokenStore, useFactory: (handle: TokenDatabaseHandle) => new TokenStore(handle.database) },
            { provide: WriteBehind, useFactory: (database: RegistryDatabase, logger: Logger) => new WriteBehind(database, logger) },
            AuditLog,
            PeerRegistry,
            BrokerServices,
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
        imports: [new FrameworkModule({ server: http.server, httpLog: false, logStartup: false })],
    });
    if (Object.keys(config).length) app.configure(config);
    return app;
}

export interface RunningBroker {
    readonly app: ReturnType<typeof createBrokerApp>;
    readonly runtime: BrokerRuntime;
    /** WebSocket URL peers connect to, e.g. `ws://127.0.0.1:41234`. */
    readonly url: string;
    readonly httpUrl: string;
    readonly port: number;
    close(): Promise<void>;
}

/** Starts a broker in this process. With `port: 0` it picks a free port; read it from `.port` or `.url`. */
export async function startBroker(config: Partial<BrokerConfig> = {}): Promise<RunningBroker> {
    assertValidConfig(Object.assign(new BrokerConfig, config));
    const app = createBrokerApp(config);
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
