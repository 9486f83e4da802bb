import './dispose-symbol';
import { ClassType } from '@deepkit/core';
import { NormalizedProvider } from '@deepkit/injector';
import { DatabaseAdapter } from '@deepkit/orm';
import { ControllerDefinition, OfflineError, RemoteController, RpcControllerState, RpcWebSocketClientAdapter } from '@deepkit/rpc';
import { BehaviorSubject, firstValueFrom, Observable, Subject, Subscription } from 'rxjs';
import { filter } from 'rxjs/operators';
import WebSocket from 'ws';
import { BrokerApi, PresenceEvent } from '../shared/broker-api';
import { Disconnected, PeerNotFound, PeerOffline, RateLimited, Timeout } from '../shared/errors';
import { assertValidPeerId } from '../shared/peer-id';
import { BackoffOptions, backoffDelay, defaultBackoff, sleep } from './backoff';
import { CircuitBreaker, CircuitBreakerOptions, defaultCircuitBreaker } from './circuit-breaker';
import { PeerKernel } from './kernel';
import { PeerClient } from './peer-client';
import { CallInvoker, CallOptions, RemotePeer } from './remote-peer';
import { PeerDatabase } from './storage/peer-database';
import { Outbox } from './outbox';
import { ChatService } from './services/chat-service';
import { DiscoveryService } from './services/discovery-service';
import { ChatPeerController } from './controllers/chat-controller';
import { DiscoveryController } from './controllers/discovery-controller';
import { ChatApi } from '../shared/chat-api';
import { DiscoveryApi } from '../shared/discovery-api';
import { RelayApi } from '../shared/relay-api';
import { RelayOptions, RelayService, defaultRelayOptions } from './services/relay-service';
import { RelayController } from './controllers/relay-controller';
import { FilesApi } from '../shared/files-api';
import { FileService } from './services/file-service';
import { FileSharingController } from './controllers/files-controller';
import { CollabApi } from '../shared/collab-api';
import { CollabService } from './services/collab-service';
import { CollabController } from './controllers/collab-controller';

export type PeerState = 'disconnected' | 'connecting' | 'connected' | 'registered' | 'closed';

export interface PeerOptions {
    /** The broker, e.g. `ws://127.0.0.1:8080`. */
    url: string;
    /** This peer's ID: letters, digits, `._-`, at most 64. */
    id: string;
    /** A peer token, for brokers in token mode. */
    token?: string;
    /**
     * Where the outbox, caches and the reclaim secret live: a SQLite file, `:memory:` (the default; nothing survives a
     * restart), or any Deepkit ORM adapter — in a browser, `WebStorageAdapter` (kept in sessionStorage).
     */
    storage?: string | DatabaseAdapter;
    /** Default call timeout; default: what the broker recommends (`whoami().callTimeoutMs`). */
    callTimeoutMs?: number;
    /** Capabilities announced after every (re-)registration. */
    capabilities?: string[];
    /** Reconnect after a lost connection; `false` to stay disconnected. */
    reconnect?: Partial<BackoffOptions> | false;
    /** Retries of idempotent actions. */
    retry?: Partial<BackoffOptions> & { attempts?: number };
    circuitBreaker?: Partial<CircuitBreakerOptions>;
    /** Extra DI providers for the controllers this peer exposes. */
    providers?: NormalizedProvider[];
    /** Controllers to serve from the moment the peer registers: `[[ChatController, 'chat'], …]`. */
    expose?: [ClassType, string | ControllerDefinition<any>][];
    /** A WebSocket class; default the platform's (browsers), else the `ws` package (Node 20 has none). */
    webSocket?: unknown;
    /** Reported by discovery's `info()`. */
    appVersion?: string;
    /** Limits of this peer as a relay for others. */
    relay?: Partial<RelayOptions>;
}

const RECLAIM_SECRET = 'reclaim-secret:';

/**
 * A peer: connects to a broker, registers its ID, serves the controllers it exposes, and calls other peers by ID.
 *
 * ```ts
 * const alice = await Peer.connect({ url, id: 'alice' });
 * alice.expose(MyController, MyApi.path);
 * await alice.to('bob').controller<MyApi>(MyApi.path).hello();
 * await alice.close();
 * ```
 *
 * Every call ends: with its result, a typed error, or Timeout. After a lost connection the peer reconnects with
 * exponential backoff and jitter, registers the same ID again and re-announces its capabilities.
 */
export class Peer implements CallInvoker {
    readonly id: string;
    readonly client: PeerClient;
    readonly kernel: PeerKernel;
    readonly database: PeerDatabase;
    readonly state$ = new BehaviorSubject<PeerState>('disconnected');
    /** Problems while reconnecting (e.g. the ID was taken meanwhile); the peer keeps trying. */
    readonly errors$ = new Subject<Error>();
    /** The broker's presence stream, kept across reconnects. */
    readonly presence$: Observable<PresenceEvent>;
    readonly appVersion: string;
    callTimeoutMs = 30_000;
    /** Messages for offline peers, delivered when they are back. */
    readonly outbox: Outbox;
    /** This peer's chat: `peer.chat.send('bob', 'hi')`, history, groups, read receipts. */
    readonly chat: ChatService;
    /** `peer.discovery.discover('bob')`: live peer → other peers → cache → broker. */
    readonly discovery: DiscoveryService;
    /** Relay and store-and-forward: `peer.relay.received$`, `peer.relay.receipts$`; call a relay with `to(r).relay`. */
    readonly relay: RelayService;
    /** `peer.files.share(path)`, `peer.files.download(peerId, fileId, destination)`. */
    readonly files: FileService;
    /** `await peer.collab.open('notes', { collaborators: ['bob'] })`: a live Yjs document. */
    readonly collab: CollabService;

    protected readonly presenceSubject = new Subject<PresenceEvent>();
    protected presenceSubscription?: Subscription;
    /**
     * Deepkit's client holds an action's Observable only weakly and ends the stream when it is garbage-collected;
     * a subscription alone does not keep it. So we keep the Observable for as long as we follow presence.
     */
    protected presenceStream?: Observable<PresenceEvent>;
    protected remotes = new Map<string, RemotePeer>();
    protected brokerProxy?: { timeout: number, proxy: RemoteController<BrokerApi> };
    protected breakers = new Map<string, CircuitBreaker>();
    protected closing = new AbortController();
    protected reconnecting?: Promise<void>;
    protected paused = false;
    protected capabilities: string[];
    /** Work started in the background (outbox flushes …) that close() must wait for before closing SQLite. */
    protected background = new Set<Promise<unknown>>();
    protected retryOptions: BackoffOptions & { attempts: number };

    protected constructor(protected options: PeerOptions, extraEntities: ClassType[] = []) {
        assertValidPeerId(options.id);
        this.id = options.id;
        this.capabilities = options.capabilities ?? [];
        this.appVersion = options.appVersion ?? '0.0.0';
        this.retryOptions = { ...defaultBackoff, attempts: 3, ...options.retry };
        this.database = new PeerDatabase(options.storage ?? ':memory:', extraEntities);
        this.presence$ = this.presenceSubject.asObservable();
        this.outbox = new Outbox(this.database);
        this.chat = new ChatService(this.database, this.outbox, this);
        this.discovery = new DiscoveryService(this.database, this);
        this.files = new FileService(this.database, this);
        this.collab = new CollabService(this.database, this);
        this.relay = new RelayService(this.database, this.outbox, this, { ...defaultRelayOptions, ...options.relay });
        this.kernel = new PeerKernel([
            { provide: Peer, useValue: this },
            { provide: ChatService, useValue: this.chat },
            { provide: DiscoveryService, useValue: this.discovery },
            { provide: RelayService, useValue: this.relay },
            { provide: FileService, useValue: this.files },
            { provide: CollabService, useValue: this.collab },
            ...(options.providers ?? []),
        ]);
        this.kernel.registerController(ChatPeerController, ChatApi);
        this.kernel.registerController(DiscoveryController, DiscoveryApi);
        this.kernel.registerController(RelayController, RelayApi);
        this.kernel.registerController(FileSharingController, FilesApi);
        this.kernel.registerController(CollabController, CollabApi);
        const webSocket = (options.webSocket ?? globalThis.WebSocket ?? WebSocket) as any;
        this.client = new PeerClient(new RpcWebSocketClientAdapter(options.url, webSocket), this.kernel);
        if (options.token) this.client.token.set(options.token);
        for (const [controller, path] of options.expose ?? []) this.kernel.registerController(controller, path);
    }

    /** Connects, registers and announces; rejects with the broker's typed error (PeerIdTaken, AccessDenied, …). */
    static async connect(options: PeerOptions): Promise<Peer> {
        const peer = Peer.create(options);
        await peer.start();
        return peer;
    }

    /**
     * A peer that is not connected yet: subscribe to its streams (`chat.updates$`, `relay.received$`,
     * `relay.receipts$`, …) first, so nothing that arrives while it connects goes unseen, then `await start()`.
     */
    static create(options: PeerOptions): Peer {
        return new Peer(options);
    }

    /** Connects, registers and announces (see `connect`). */
    async start(): Promise<void> {
        await this.database.migrate();
        try {
            await this.connectOnce();
        } catch (error) {
            await this.close();
            throw error instanceof OfflineError ? new Disconnected(`Could not reach the broker at ${this.options.url}: ${error.message}`) : error;
        }
        this.client.transporter.disconnected.subscribe(() => this.onDisconnected());
    }

    /** The broker's own API, for discovery and presence. Cached: a new proxy would cost a type round trip per call. */
    get broker(): RemoteController<BrokerApi> {
        if (this.brokerProxy?.timeout !== this.callTimeoutMs) {
            this.brokerProxy = { timeout: this.callTimeoutMs, proxy: this.client.controller<BrokerApi>(BrokerApi.path, { timeout: this.callTimeoutMs }) };
        }
        return this.brokerProxy.proxy;
    }

    get state(): PeerState {
        return this.state$.value;
    }

    /** Serves `controller` to other peers under `path`. Can be called at any time. */
    expose<T>(controller: ClassType<T>, path: string | ControllerDefinition<any>): this {
        this.kernel.registerController(controller, path);
        return this;
    }

    /** Another peer; cached, so its controller proxies (and their types) are reused. */
    to(peerId: string): RemotePeer {
        let remote = this.remotes.get(peerId);
        if (!remote) this.remotes.set(peerId, remote = new RemotePeer(peerId, this));
        return remote;
    }

    /** Replaces the announced capabilities; they are announced again after every reconnect. */
    async announce(capabilities: string[]): Promise<void> {
        this.capabilities = capabilities;
        if (this.state === 'registered') await this.broker.announce(capabilities);
    }

    announcedCapabilities(): string[] {
        return this.capabilities;
    }

    circuit(peerId: string): CircuitBreaker {
        let breaker = this.breakers.get(peerId);
        if (!breaker) this.breakers.set(peerId, breaker = new CircuitBreaker(peerId, { ...defaultCircuitBreaker, ...this.options.circuitBreaker }));
        return breaker;
    }

    async invoke(peerId: string, controller: RpcControllerState, method: string, args: unknown[], options: CallOptions): Promise<any> {
        const timeout = options.timeout ?? this.callTimeoutMs;
        const attempts = options.idempotent?.includes(method) ? this.retryOptions.attempts : 1;
        const breaker = this.circuit(peerId);
        for (let attempt = 0; ; attempt++) {
            breaker.enter();
            try {
                await this.whenRegistered(timeout);
                const result = await this.client.actionClient.action(controller, method, args, { timeout });
                breaker.success();
                return result;
            } catch (error) {
                if (error instanceof Timeout || error instanceof PeerOffline || error instanceof PeerNotFound) breaker.failure();
                else breaker.neutral();
                const retryable = error instanceof Timeout || error instanceof PeerOffline || error instanceof Disconnected || error instanceof RateLimited;
                if (!retryable || attempt + 1 >= attempts || this.closing.signal.aborted) throw error;
                await sleep(backoffDelay(attempt, this.retryOptions), this.closing.signal);
            }
        }
    }

    /** Resolves once registered with the broker; Timeout after `timeoutMs`, Disconnected if the peer closes. */
    async whenRegistered(timeoutMs: number = this.callTimeoutMs): Promise<void> {
        if (this.state === 'registered') return;
        if (this.state === 'closed') throw new Disconnected('This peer is closed.');
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timedOut = new Promise<never>((resolve, reject) => {
            timer = setTimeout(() => reject(new Timeout(`Not connected to the broker within ${timeoutMs} ms; the peer keeps reconnecting.`, timeoutMs)), timeoutMs);
        });
        try {
            const state = await Promise.race([firstValueFrom(this.state$.pipe(filter(s => s === 'registered' || s === 'closed'))), timedOut]);
            if (state === 'closed') throw new Disconnected('This peer is closed.');
        } finally {
            clearTimeout(timer);
        }
    }

    protected async connectOnce(): Promise<void> {
        this.state$.next('connecting');
        await this.client.connect();
        this.state$.next('connected');
        const whoami = await this.broker.whoami();
        this.callTimeoutMs = this.options.callTimeoutMs ?? whoami.callTimeoutMs;
        const secretKey = RECLAIM_SECRET + this.id;
        const secret = await this.database.getSetting(secretKey);
        // Frames for our ID (CallerIdentity first) can arrive before register() returns: serve them from now on.
        this.client.servedPeerId = this.id;
        const registration = await this.broker.register(this.id, secret);
        if (registration.reclaimSecret && registration.reclaimSecret !== secret) await this.database.setSetting(secretKey, registration.reclaimSecret);
        if (this.capabilities.length) await this.broker.announce(this.capabilities);
        await this.followPresence();
        this.state$.next('registered');
        // Whatever is queued from before (a reconnect, or a restart of this process) goes out now where it can.
        this.inBackground(this.outbox.flush());
        this.inBackground(this.collab.resyncAll());
    }

    protected inBackground(work: Promise<unknown>): void {
        const tracked = work.catch(error => {
            if (!this.closing.signal.aborted) this.errors$.next(error);
        }).finally(() => this.background.delete(tracked));
        this.background.add(tracked);
    }

    /** Subscribes to the broker's presence and resolves once the snapshot of who is online has arrived. */
    protected async followPresence(): Promise<void> {
        this.presenceSubscription?.unsubscribe();
        let synced!: () => void;
        const snapshotDone = new Promise<void>(resolve => synced = resolve);
        this.presenceStream = await this.broker.presence(true);
        this.presenceSubscription = this.presenceStream.subscribe({
            next: event => {
                if (event.kind === 'synced') return synced();
                this.presenceSubject.next(event);
                // A live "online" (sequence > 0, not the snapshot): the broker says the peer is back. Give it a
                // fresh circuit and send whatever waits for it.
                if (event.kind === 'online' && event.sequence > 0) {
                    this.circuit(event.peerId).reset();
                    this.inBackground(this.outbox.flush(event.peerId));
                }
            },
            error: () => synced(),
        });
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([snapshotDone, new Promise<void>((resolve, reject) => {
            timer = setTimeout(() => reject(new Timeout('The broker did not send the presence snapshot in time.', this.callTimeoutMs)), this.callTimeoutMs);
        })]).finally(() => clearTimeout(timer));
    }

    /**
     * Goes offline on purpose (airplane mode): disconnects and stays away until `resume()`. Local work goes on:
     * documents can be edited, chat messages queue up.
     */
    async pause(): Promise<void> {
        this.paused = true;
        await this.client.disconnect();
        await this.reconnecting;
    }

    /** Comes back after `pause()`: reconnects, re-registers, and resolves once registered. */
    async resume(timeoutMs: number = this.callTimeoutMs): Promise<void> {
        this.paused = false;
        if (this.state !== 'registered' && !this.reconnecting) this.reconnecting = this.reconnectLoop().finally(() => this.reconnecting = undefined);
        await this.whenRegistered(timeoutMs);
    }

    protected onDisconnected(): void {
        if (this.closing.signal.aborted) return;
        this.state$.next('disconnected');
        if (this.options.reconnect === false || this.reconnecting || this.paused) return;
        this.reconnecting = this.reconnectLoop().finally(() => this.reconnecting = undefined);
    }

    protected async reconnectLoop(): Promise<void> {
        const backoff = { ...defaultBackoff, ...(this.options.reconnect || {}) };
        for (let attempt = 0; !this.closing.signal.aborted && !this.paused; attempt++) {
            await sleep(backoffDelay(attempt, backoff), this.closing.signal);
            if (this.closing.signal.aborted || this.paused) return;
            try {
                await this.connectOnce();
                return;
            } catch (error) {
                this.errors$.next(error as Error);
                // Connected but not registered (e.g. the ID is taken meanwhile): start over from a clean connection.
                if (this.client.transporter.isConnected()) await this.client.disconnect();
                if (this.state !== 'closed') this.state$.next('disconnected');
            }
        }
    }

    /** Disconnects and releases everything. Safe to call twice. */
    async close(): Promise<void> {
        if (this.closing.signal.aborted) return;
        this.closing.abort();
        this.presenceSubscription?.unsubscribe();
        this.presenceStream = undefined;
        await this.client.disconnect();
        this.state$.next('closed');
        this.state$.complete();
        this.presenceSubject.complete();
        await this.reconnecting;
        await Promise.allSettled([...this.background, this.discovery.idle(), this.outbox.idle()]);
        await this.collab.idle();
        this.errors$.complete();
        this.database.disconnect();
    }

    async [Symbol.asyncDispose](): Promise<void> {
        await this.close();
    }
}
