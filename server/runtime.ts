import { createServer, Server } from 'http';
import { AddressInfo } from 'net';
import { ApplicationServer, RpcServer } from '@deepkit/framework';
import { Logger, LoggerLevel } from '@deepkit/logger';
import { assertValidConfig, BrokerConfig } from './config';
import { PeerExchange } from './exchange/peer-exchange';
import { RegistryDatabase, TokenDatabase } from './registry/database';
import { PeerRegistry } from './registry/peer-registry';
import { AuditLog } from './registry/audit-log';
import { DatabaseLock } from './registry/database-lock';
import { BrokerStats } from './stats';
import { ClusterState } from './cluster/cluster-state';
import { BrokerWebSocketServer } from './websocket-server';

/** The http server the framework serves HTTP and WebSocket RPC on; the runtime decides when it listens. */
export class BrokerHttpServer {
    // Node enforces headersTimeout and requestTimeout only when it checks (every 30 s by default): check each second,
    // so a socket that never sends its request is closed close to the deadline.
    readonly server: Server = createServer({ connectionsCheckingInterval: 1_000 });

    /**
     * Bounds the time an HTTP client (or a WebSocket before its upgrade) may hold a socket without completing a
     * request: Node 20 allows 60 s for the headers and 5 minutes for a request. Upgraded WebSockets are not affected;
     * the WebSocket server watches those.
     */
    applyTimeouts(config: BrokerConfig): void {
        this.server.headersTimeout = config.handshakeTimeoutMs;
        // Our HTTP requests are small (status, metrics, the dashboard page); a body that trickles in is an attack.
        this.server.requestTimeout = Math.max(config.handshakeTimeoutMs, 30_000);
        this.server.keepAliveTimeout = 5_000;
    }
}

/** The port the broker should listen on is taken. */
export class PortInUse extends Error {
    readonly code = 'PORT_IN_USE';

    constructor(readonly host: string, readonly port: number) {
        super(`Port ${port} on ${host} is in use (another broker or program listens there). Stop it, or start with another --port (SWITCHBOARD_PORT; 0 picks a free one).`);
    }
}

/** Starts and stops everything in order, for the `start` command and for embedding (tests, the test kit). */
export class BrokerRuntime {
    protected started = false;
    protected stopped = false;
    protected stopping?: Promise<void>;
    protected draining?: Promise<void>;
    protected databaseLock?: DatabaseLock;
    protected whenStopped!: () => void;
    /** Resolves once the broker has stopped (after `stop()`, or a drain that ended). */
    readonly finished = new Promise<void>(resolve => this.whenStopped = resolve);

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
        protected audit: AuditLog,
        protected clusterState: ClusterState,
        protected rpcServer: RpcServer,
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
        // Before any write: two brokers on one registry would overwrite each other's peers.
        this.databaseLock = new DatabaseLock(this.config.database);
        this.databaseLock.acquire();
        try {
            await this.startServices();
        } catch (error) {
            this.stats.stopSampling();
            this.databaseLock.release();
            await this.clusterState.close();
            throw error;
        }
        this.logger.log(`Switchboard broker listening on ${this.url} (auth: ${this.config.auth}, database: ${this.config.database}); dashboard on ${this.httpUrl}/`);
    }

    protected async startServices(): Promise<void> {
        await this.tokenDatabase.migrate();
        await this.registry.open();
        this.stats.onlinePeers = () => this.registry.countOnline();
        this.stats.brokers = () => this.exchange.brokers();
        this.stats.startSampling();
        await this.exchange.start();
        this.http.applyTimeouts(this.config);
        await new Promise<void>((resolve, reject) => {
            const failed = (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? new PortInUse(this.config.host, this.config.port) : error);
            this.http.server.once('error', failed);
            this.http.server.listen(this.config.port, this.config.host, () => {
                this.http.server.off('error', failed);
                resolve();
            });
        });
        await this.applicationServer.start({ listenOnSignals: false });
    }

    /**
     * Stops gracefully (SIGTERM, `switchboard drain`): refuses new connections, tells its SDK peers to move to another
     * broker (they first finish the calls they make and serve), waits up to `timeoutMs` for its connections to go, then
     * stops. Safe to call twice; `stop()` during a drain ends it at once.
     */
    drain(timeoutMs: number = this.config.drainTimeoutMs): Promise<void> {
        if (!this.started || this.stopped) return this.stopping ?? Promise.resolve();
        this.draining ??= (async () => {
            const server = this.rpcServer as BrokerWebSocketServer;
            this.logger.log(`Draining: ${server.connectionCount} connections are told to move to another broker; stopping once they are gone, at most in ${timeoutMs} ms`);
            let timer: ReturnType<typeof setTimeout> | undefined;
            await Promise.race([server.drain(), new Promise(resolve => timer = setTimeout(resolve, timeoutMs)), this.finished]);
            clearTimeout(timer);
            if (server.connectionCount) this.logger.log(`Drain: ${server.connectionCount} connections still open after ${timeoutMs} ms; closing them`);
            await this.stop();
        })();
        return this.draining;
    }

    /** Whether a drain has begun. */
    get isDraining(): boolean {
        return !!this.draining;
    }

    /** Closes every connection, marks all peers offline, writes pending registry and audit rows. Safe to call twice. */
    stop(): Promise<void> {
        if (!this.started) return Promise.resolve();
        this.stopping ??= this.stopServices().finally(() => this.whenStopped());
        return this.stopping;
    }

    protected async stopServices(): Promise<void> {
        this.stopped = true;
        this.stats.stopSampling();
        await this.applicationServer.close();
        this.audit.flushCalls();
        await this.registry.close();
        await this.exchange.stop();
        await this.clusterState.close();
        await new Promise<void>(resolve => {
            this.http.server.close(() => resolve());
            // A browser keeps its HTTP connection (dashboard page) open; close() alone would wait for it to time out.
            this.http.server.closeAllConnections();
        });
        this.tokenDatabase.disconnect();
        this.registryDatabase.disconnect();
        this.databaseLock?.release();
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
