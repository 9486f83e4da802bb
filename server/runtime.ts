import { createServer, Server } from 'http';
import { AddressInfo } from 'net';
import { ApplicationServer } from '@deepkit/framework';
import { Logger, LoggerLevel } from '@deepkit/logger';
import { assertValidConfig, BrokerConfig } from './config';
import { PeerExchange } from './exchange/peer-exchange';
import { RegistryDatabase, TokenDatabase } from './registry/database';
import { PeerRegistry } from './registry/peer-registry';
import { BrokerStats } from './stats';

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
        protected stats: BrokerStats,
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
        this.stats.onlinePeers = () => this.registry.countOnline();
        await this.exchange.start();
        await new Promise<void>((resolve, reject) => {
            this.http.server.once('error', reject);
            this.http.server.listen(this.config.port, this.config.host, () => {
                this.http.server.off('error', reject);
                resolve();
            });
        });
        await this.applicationServer.start({ listenOnSignals: false });
        this.logger.log(`Switchboard broker listening on ${this.url} (auth: ${this.config.auth}, database: ${this.config.database}); dashboard on ${this.httpUrl}/`);
    }

    /** Closes every connection, marks all peers offline, writes pending registry and audit rows. Safe to call twice. */
    async stop(): Promise<void> {
        if (!this.started || this.stopped) return;
        this.stopped = true;
        await this.applicationServer.close();
        await this.registry.close();
        await this.exchange.stop();
        await new Promise<void>(resolve => {
            this.http.server.close(() => resolve());
            // A browser keeps its HTTP connection (dashboard page) open; close() alone would wait for it to time out.
            this.http.server.closeAllConnections();
        });
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
