import './dispose-symbol';
import { ClassType } from '@deepkit/core';
import { NormalizedProvider } from '@deepkit/injector';
import { DatabaseAdapter } from '@deepkit/orm';
import { ControllerDefinition, OfflineError, RemoteController, RpcControllerState, RpcTypes } from '@deepkit/rpc';
import { BehaviorSubject, firstValueFrom, Observable, Subject, Subscription } from 'rxjs';
import { filter } from 'rxjs/operators';
import WebSocket from 'ws';
import { BrokerApi, PresenceEvent, ClusterUnavailable, Disconnected, PEER_REPLACED_CLOSE_CODE, PeerNotFound, PeerOffline, PeerReplaced, RateLimited, Timeout, assertValidPeerId, ChatApi, DiscoveryApi, RelayApi, FilesApi, CollabApi } from '@switchboard/protocol';
import { BackoffOptions, backoffDelay, defaultBackoff, sleep } from './backoff';
import { CallDeadline } from './call-deadline';
import { CircuitBreaker, CircuitBreakerOptions, defaultCircuitBreaker } from './circuit-breaker';
import { ConnectionWatchdog } from './connection-watchdog';
import { PeerKernel } from './kernel';
import { PeerClient } from './peer-client';
import { BrokerMove } from './broker-move';
import { CallInvoker, CallOptions, RemotePeer } from './remote-peer';
import { PeerDatabase } from './storage/peer-database';
import { WebSocketTransport } from './websocket-transport';
import { BroadcastOptions, BroadcastResult } from './broadcast';
import { MAX_MULTICAST_TARGETS, withoutConnectPrefix } from '@switchboard/protocol/internal';
import { Outbox } from './outbox';
import { ChatService } from './services/chat-service';
import { ChatOptions, defaultChatOptions } from './services/chat-options';
import { DiscoveryService } from './services/discovery-service';
import { PresenceFollower, PresenceMode } from './presence-follower';
import { ChatPeerController } from './controllers/chat-controller';
import { DiscoveryController } from './controllers/discovery-controller';
import { RelayOptions, RelayService, defaultRelayOptions } from './services/relay-service';
import { RelayController } from './controllers/relay-controller';
import { FileService } from './services/file-service';
import { FileSharingController } from './controllers/files-controller';
import { CollabService } from './services/collab-service';
import { CollabController } from './controllers/collab-controller';
import { FeatureApis, FeatureMap, PeerFeatures } from './feature';

/**
 * `replaced`: another process took this peer ID over with the same reclaim secret or token; the peer stopped and
 * stays away (errors$ carries PeerReplaced). `closed` and `replaced` are final, but for `resume()` after `replaced`.
 */
export type PeerState = 'disconnected' | 'connecting' | 'connected' | 'registered' | 'replaced' | 'closed';

export interface PeerOptions<F extends FeatureMap = FeatureMap> {
    /**
     * The broker, e.g. `ws://127.0.0.1:8080`, or several brokers of one cluster: the peer connects to the first that
     * answers and, when its broker is lost, moves to the next (one backoff delay per round over the list).
     */
    url: string | string[];
    /** This peer's ID: letters, digits, `._-`, at most 64. */
    id: string;
    /** A peer token, for brokers in token mode. */
    token?: string;
    /**
     * Where the outbox, caches and the reclaim secret live: a SQLite file, `:memory:` (the default; nothing survives a
     * restart), or any Deepkit ORM adapter — in a browser, `WebStorageAdapter` (kept in sessionStorage).
     */
    storage?: string | DatabaseAdapter;
    /**
     * How long `connect()`/`start()` keeps retrying a broker that answers but cannot register this peer yet (Timeout,
     * Disconnected, ClusterUnavailable, e.g. right after its cluster link came back); default 10 000.
     */
    connectTimeoutMs?: number;
    /** Default call timeout; default: what the broker recommends (`whoami().callTimeoutMs`). */
    callTimeoutMs?: number;
    /** Capabilities announced after every (re-)registration. */
    capabilities?: string[];
    /** Reconnect after a lost connection; `false` to stay disconnected. */
    reconnect?: Partial<BackoffOptions> | false;
    /** Retries of idempotent actions. */
    retry?: Partial<BackoffOptions> & { attempts?: number };
    circuitBreaker?: Partial<CircuitBreakerOptions>;
    /**
     * Milliseconds since the epoch, for the circuit breakers' cool-down and the relay's TTLs; default `Date.now`.
     * Tests pass a clock they move, so cool-downs and expiry need no waiting.
     */
    clock?: () => number;
    /**
     * Milliseconds between pings to the broker (default 15 000). When two pings in a row go unanswered and nothing
     * else arrives, the connection is taken for dead (a frozen broker, a half-open TCP connection): it is closed,
     * pending calls fail with Disconnected, and the peer reconnects with its usual backoff.
     */
    pingIntervalMs?: number;
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
    /** What other peers may make this peer store through its chat (unread messages per sender, groups per owner). */
    chat?: Partial<ChatOptions>;
    /**
     * Whose presence this peer follows (presence$, outbox flushes and fresh circuits on a peer's return): `'interest'`
     * (default) the peers it deals with (see PresenceMode), `'all'` every peer of the broker, `false` none.
     */
    presence?: PresenceMode;
    /** Opt-in features by name (see peer/feature.ts): `{ state: replicatedState(), grants: grants() }` → `peer.features.state`. */
    features?: F;
}

const RECLAIM_SECRET = 'reclaim-secret:';
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

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
export class Peer<F extends FeatureMap = Record<never, never>> implements CallInvoker {
    readonly id: string;
    readonly client: PeerClient;
    readonly kernel: PeerKernel;
    readonly database: PeerDatabase;
    readonly state$ = new BehaviorSubject<PeerState>('disconnected');
    /** The brokers this peer may use, in the order it tries them. */
    readonly brokerUrls: readonly string[];
    /** The broker of the current connection (undefined while there is none); changes on failover. */
    readonly brokerUrl$ = new BehaviorSubject<string | undefined>(undefined);
    /**
     * Problems in the background: while reconnecting (e.g. the ID was taken meanwhile; the peer keeps trying), a
     * broker that stopped answering, and PeerReplaced when another process took over this ID (the peer stops).
     */
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
    /** The features this peer was created with, by name (`options.features`). */
    readonly features: FeatureApis<F>;

    protected readonly presenceSubject = new Subject<PresenceEvent>();
    /** Follows the broker's batched presence by interest (PeerOptions.presence), across reconnects. */
    protected presenceFollower: PresenceFollower;
    protected remotes = new Map<string, RemotePeer>();
    protected brokerProxy?: { timeout: number, proxy: RemoteController<BrokerApi> };
    protected breakers = new Map<string, CircuitBreaker>();
    protected closing = new AbortController();
    protected reconnecting?: Promise<void>;
    protected paused = false;
    /** Another process took over this ID: no reconnecting until `resume()`. */
    protected replaced = false;
    protected transport: WebSocketTransport;
    protected watchdog: ConnectionWatchdog;
    protected capabilities: string[];
    /** Work started in the background (outbox flushes …) that close() must wait for before closing SQLite. */
    protected background = new Set<Promise<unknown>>();
    protected retryOptions: BackoffOptions & { attempts: number };
    /** Moving off a draining broker: our calls in flight, and the move under way. */
    protected move = new BrokerMove();
    /** The next reconnect round starts without its backoff delay (leaving a draining broker). */
    protected reconnectAtOnce = false;
    protected featureSet: PeerFeatures<F>;

    protected constructor(protected options: PeerOptions<F>, extraEntities: ClassType[] = []) {
        assertValidPeerId(options.id);
        this.id = options.id;
        // Without duplicates: the failover walks the list by position of the current URL.
        this.brokerUrls = typeof options.url === 'string' ? [options.url] : [...new Set(options.url)];
        if (!this.brokerUrls.length) throw new TypeError('Peer options: `url` needs at least one broker URL.');
        this.capabilities = options.capabilities ?? [];
        this.appVersion = options.appVersion ?? '0.0.0';
        this.retryOptions = { ...defaultBackoff, attempts: 3, ...options.retry };
        this.featureSet = new PeerFeatures(options.features);
        this.database = new PeerDatabase(options.storage ?? ':memory:', [...extraEntities, ...this.featureSet.entities]);
        this.presence$ = this.presenceSubject.asObservable();
        this.presenceFollower = new PresenceFollower(options.presence ?? 'interest', this, this.id, (event, answer) => this.onPresence(event, answer), error => this.errors$.next(error));
        this.outbox = new Outbox(this.database);
        this.chat = new ChatService(this.database, this.outbox, this, { ...defaultChatOptions, ...options.chat });
        this.discovery = new DiscoveryService(this.database, this);
        this.files = new FileService(this.database, this);
        this.collab = new CollabService(this.database, this);
        this.relay = new RelayService(this.database, this.outbox, this, { ...defaultRelayOptions, ...options.relay }, options.clock);
        this.featureSet.setup({ peer: this, database: this.database, clock: options.clock ?? Date.now, inBackground: work => this.inBackground(work) });
        this.features = this.featureSet.apis;
        this.kernel = new PeerKernel([
            { provide: Peer, useValue: this },
            { provide: ChatService, useValue: this.chat },
            { provide: DiscoveryService, useValue: this.discovery },
            { provide: RelayService, useValue: this.relay },
            { provide: FileService, useValue: this.files },
            { provide: CollabService, useValue: this.collab },
            ...this.featureSet.providers,
            ...(options.providers ?? []),
        ]);
        this.kernel.registerController(ChatPeerController, ChatApi);
        this.kernel.registerController(DiscoveryController, DiscoveryApi);
        this.kernel.registerController(RelayController, RelayApi);
        this.kernel.registerController(FileSharingController, FilesApi);
        this.kernel.registerController(CollabController, CollabApi);
        const webSocket = (options.webSocket ?? globalThis.WebSocket ?? WebSocket) as any;
        this.transport = new WebSocketTransport(this.brokerUrls[0], webSocket);
        this.client = new PeerClient(this.transport, this.kernel);
        const pingIntervalMs = options.pingIntervalMs ?? 15_000;
        this.watchdog = new ConnectionWatchdog(pingIntervalMs, () => this.transport.messagesReceived, () => this.ping(), () => {
            this.errors$.next(new Disconnected(`The broker answered no ping for ${2 * pingIntervalMs} ms (frozen, or a half-open connection); reconnecting.`));
            this.transport.abort('The broker stopped answering pings.');
        });
        if (options.token) this.client.token.set(options.token);
        this.client.drain$.subscribe(() => this.leaveDrainingBroker());
        for (const [controller, path] of [...this.featureSet.controllers, ...options.expose ?? []]) this.kernel.registerController(controller, path);
    }

    /** Connects, registers and announces; rejects with the broker's typed error (PeerIdTaken, AccessDenied, …). */
    static async connect<F extends FeatureMap = Record<never, never>>(options: PeerOptions<F>): Promise<Peer<F>> {
        const peer = Peer.create(options);
        await peer.start();
        return peer;
    }

    /**
     * A peer that is not connected yet: subscribe to its streams (`chat.updates$`, `relay.received$`,
     * `relay.receipts$`, …) first, so nothing that arrives while it connects goes unseen, then `await start()`.
     */
    static create<F extends FeatureMap = Record<never, never>>(options: PeerOptions<F>): Peer<F> {
        return new Peer<F>(options);
    }

    /** Connects, registers and announces (see `connect`). */
    async start(): Promise<void> {
        await this.database.migrate();
        await this.featureSet.started();
        try {
            await this.connectToAny();
        } catch (error) {
            await this.close();
            throw error;
        }
        this.client.transporter.disconnected.subscribe(() => this.onDisconnected());
    }

    /** The broker this peer is connected to; undefined while disconnected. */
    get brokerUrl(): string | undefined {
        return this.brokerUrl$.value;
    }

    /**
     * Rounds over the brokers until one registers us. A broker that answered but could not register us yet (Timeout,
     * Disconnected, ClusterUnavailable: e.g. its cluster link just came back) gets another round after a backoff
     * delay, within `connectTimeoutMs`; a refusal (PeerIdTaken, AccessDenied, …) or no broker listening at all ends
     * at once.
     */
    protected async connectToAny(): Promise<void> {
        const backoff = { ...defaultBackoff, ...(this.options.reconnect || {}) };
        const deadline = Date.now() + (this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
        for (let round = 0; ; round++) {
            const transient = await this.connectRound();
            if (!transient) return;
            const delay = backoffDelay(round, backoff);
            if (Date.now() + delay >= deadline || this.closing.signal.aborted) throw transient;
            this.errors$.next(transient);
            await sleep(delay, this.closing.signal);
            this.nextBroker();
        }
    }

    /**
     * One round over the brokers, from the current one on: undefined once registered, or the transient failure to
     * retry. A broker that cannot be reached (or drops us while we register) sends us to the next; a refusal ends
     * the round: every broker of a cluster would say the same.
     */
    protected async connectRound(): Promise<Error | undefined> {
        const failures: string[] = [];
        let transient: Error | undefined;
        for (let tried = 1; ; tried++) {
            try {
                await this.connectOnce();
                return undefined;
            } catch (error) {
                if (!unreachable(error)) throw error;
                if (!(error instanceof OfflineError)) transient = error;
                failures.push(`${this.transport.url}: ${whyUnreachable(error)}`);
                if (this.client.transporter.isConnected()) await this.client.disconnect();
                if (tried < this.brokerUrls.length) {
                    this.nextBroker();
                } else if (transient) {
                    return transient;
                } else if (this.brokerUrls.length === 1) {
                    throw new Disconnected(`Could not reach the broker at ${this.transport.url}: ${whyUnreachable(error)}. Is it running, and is the URL right?`);
                } else {
                    throw new Disconnected(`Could not reach any of the ${failures.length} brokers: ${failures.join('; ')}.`);
                }
            }
        }
    }

    /** Points the next connection attempt at the next broker of the list (the same one when there is only one). */
    protected nextBroker(): void {
        this.transport.url = this.brokerUrls[(this.brokerUrls.indexOf(this.transport.url) + 1) % this.brokerUrls.length];
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
        if (!remote) {
            this.remotes.set(peerId, remote = new RemotePeer(peerId, this));
            void this.presenceFollower.watch([peerId]);
        }
        return remote;
    }

    /**
     * Follows these peers' presence on presence$ from now on (with `presence: 'interest'`, the default; peers this one
     * calls are followed without it). Resolves once the broker follows them for this peer.
     */
    watchPresence(peerIds: Iterable<string>): Promise<void> {
        return this.presenceFollower.watch(peerIds);
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
        if (!breaker) this.breakers.set(peerId, breaker = new CircuitBreaker(peerId, { ...defaultCircuitBreaker, ...this.options.circuitBreaker }, this.options.clock));
        return breaker;
    }

    /**
     * One call to many peers, sent as one frame: the broker checks the send policy per target, hands each its copy
     * (each receiver sees this peer as the verified caller) and answers at once with every target's outcome —
     * `delivered`, `offline`, `not-found` or `denied`. Fire and forget, or `collectReplies` to wait for each answer.
     * Arguments travel as plain BSON (strings, numbers, booleans, dates, bytes, arrays and plain objects); each
     * receiver validates them against its action's parameter types. Costs one rate-limit token per target.
     *
     * ```ts
     * const { delivered, failed, outcomes } = await alice.broadcast(['bob', 'carol'], ChatApi, 'receive', [message]);
     * ```
     */
    async broadcast<R = unknown>(targets: readonly string[], controller: string | ControllerDefinition<any>, action: string, args: unknown[] = [], options: BroadcastOptions = {}): Promise<BroadcastResult<R>> {
        for (const target of targets) assertValidPeerId(target);
        // The broker sends one copy per distinct target; a repeated one would wait for a reply that never comes.
        targets = [...new Set(targets)];
        const path = typeof controller === 'string' ? controller : controller.path;
        const deadline = new CallDeadline(options.timeout ?? this.callTimeoutMs, `${targets.length} peers`);
        try {
            if (this.state !== 'registered') await deadline.within('registration', this.registeredOrStopped());
            const result: BroadcastResult<R> = { delivered: 0, forwarded: 0, failed: 0, outcomes: {}, replies: options.collectReplies ? {} : undefined };
            for (let start = 0; start < targets.length; start += MAX_MULTICAST_TARGETS) {
                const part = await deadline.during('action', this.client.multicast<R>(targets.slice(start, start + MAX_MULTICAST_TARGETS), path, action, args, {
                    timeout: deadline.remainingMs(), collectReplies: options.collectReplies,
                }));
                result.delivered += part.delivered;
                result.forwarded += part.forwarded;
                result.failed += part.failed;
                Object.assign(result.outcomes, part.outcomes);
                if (part.replies) Object.assign(result.replies!, part.replies);
            }
            return result;
        } finally {
            deadline.end();
        }
    }

    /** A feature's better path to `peerId` than the broker (a live direct link), if any: `to(peerId)` calls use it. */
    directPath(peerId: string): CallInvoker | undefined {
        return this.featureSet.directPath(peerId);
    }

    /**
     * A call through the broker. One deadline for the whole call (registration wait, type load, action, retries): it
     * ends within its timeout. The target's circuit counts only the target's failures; our own outage (not
     * registered, connection lost) is not held against it.
     */
    async invoke(peerId: string, controller: RpcControllerState, method: string, args: unknown[], options: CallOptions): Promise<any> {
        const deadline = new CallDeadline(options.timeout ?? this.callTimeoutMs, `peer "${peerId}"`);
        const attempts = options.idempotent?.includes(method) ? this.retryOptions.attempts : 1;
        const breaker = this.circuit(peerId);
        try {
            for (let attempt = 0; ; attempt++) {
                const epoch = breaker.enter();
                const connectionId = this.client.transporter.connectionId;
                try {
                    const result = await this.attempt(deadline, controller, method, args);
                    breaker.success();
                    return result;
                } catch (caught) {
                    // A per-message timer given the remaining time: the caller's deadline passed.
                    const error = caught instanceof Timeout && !caught.stage && deadline.passed() ? deadline.timeout() : caught;
                    const sameConnection = connectionId === this.client.transporter.connectionId;
                    if (sameConnection && blamesTarget(error)) breaker.failure(epoch);
                    else breaker.neutral();
                    const retryable = error instanceof Timeout || error instanceof PeerOffline || error instanceof Disconnected || error instanceof RateLimited;
                    if (!retryable || attempt + 1 >= attempts || this.closing.signal.aborted) throw error;
                    const delay = backoffDelay(attempt, this.retryOptions);
                    // A retry never extends the caller's deadline: one that could not even start fails now.
                    if (delay >= deadline.remainingMs()) throw error;
                    await sleep(delay, this.closing.signal);
                }
            }
        } finally {
            deadline.end();
        }
    }

    protected async attempt(deadline: CallDeadline, controller: RpcControllerState, method: string, args: unknown[]): Promise<any> {
        // No call starts on a broker that is going: it waits for the peer on its next broker.
        if (this.move.underWay) await deadline.within('registration', this.move.underWay);
        if (this.state !== 'registered') await deadline.within('registration', this.registeredOrStopped());
        this.move.callStarted();
        try {
            if (!controller.getState(method).types) {
                if (deadline.passed()) throw deadline.timeout('types');
                // Deepkit's action() would load the types with the same timeout as the action: each would get it whole.
                await deadline.within('types', this.client.actionClient.loadActionTypes(controller, method, { timeout: deadline.remainingMs() }));
            }
            if (deadline.passed()) throw deadline.timeout('action');
            return await deadline.during('action', this.client.callAction(controller, method, args, deadline.remainingMs()));
        } finally {
            this.move.callEnded();
        }
    }

    /**
     * Our broker is draining (SwitchboardFrame.Drain). With other brokers to go to: new calls wait, the calls we make
     * and serve finish (at most `callTimeoutMs`), then the peer moves to the next broker at once. With one URL it stays
     * until the broker closes the connection, then reconnects as usual.
     */
    protected leaveDrainingBroker(): void {
        if (this.brokerUrls.length < 2 || this.state !== 'registered' || this.closing.signal.aborted) return;
        this.move.run(this.callTimeoutMs, [this.client.serving.idle()], async () => {
            this.reconnectAtOnce = true;
            const left = firstValueFrom(this.state$.pipe(filter(state => state !== 'registered')));
            await this.client.disconnect();
            await left;
            await this.registeredOrStopped();
        }).catch(error => {
            if (!this.closing.signal.aborted) this.errors$.next(error);
        });
    }

    /**
     * Resolves once registered with the broker; Timeout after `timeoutMs`, Disconnected if the peer closes,
     * PeerReplaced if another process took over its ID.
     */
    async whenRegistered(timeoutMs: number = this.callTimeoutMs): Promise<void> {
        if (this.state === 'registered') return;
        const deadline = new CallDeadline(timeoutMs, 'the broker');
        try {
            await deadline.within('registration', this.registeredOrStopped());
        } finally {
            deadline.end();
        }
    }

    protected async registeredOrStopped(): Promise<void> {
        this.assertRunning();
        const state = await firstValueFrom(this.state$.pipe(filter(s => s === 'registered' || s === 'closed' || s === 'replaced')));
        if (state !== 'registered') this.assertRunning();
    }

    protected assertRunning(): void {
        if (this.state === 'closed') throw new Disconnected('This peer is closed.');
        if (this.state === 'replaced') throw PeerReplaced.for(this.id);
    }

    /** One app-level ping; the answer (or any other traffic) is what the watchdog looks for. */
    protected ping(): void {
        if (!this.client.transporter.isConnected()) return;
        try {
            this.client.sendMessage(RpcTypes.Ping, undefined, undefined, { dontWaitForConnection: true }).onReply((reply, subject) => subject.release());
        } catch {
            // The connection is closing; the watchdog sees the silence.
        }
    }

    protected async connectOnce(): Promise<void> {
        // From the first byte on: a connection attempt into a half-open network must not hang forever either.
        this.watchdog.start();
        try {
            await this.registerOnce();
        } catch (error) {
            this.watchdog.stop();
            throw error;
        }
    }

    protected async registerOnce(): Promise<void> {
        this.state$.next('connecting');
        await this.client.connect();
        this.brokerUrl$.next(this.transport.url);
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
        // Failures counted before (our own outage among them) say nothing about the targets now: start afresh.
        for (const breaker of this.breakers.values()) breaker.reset();
        await this.followPresence();
        this.state$.next('registered');
        // Whatever is queued from before (a reconnect, or a restart of this process) goes out now where it can.
        this.inBackground(this.outbox.flush());
        this.inBackground(this.collab.resyncAll());
        this.featureSet.registered(work => this.inBackground(work));
    }

    protected inBackground(work: Promise<unknown>): void {
        const tracked = work.catch(error => {
            if (!this.closing.signal.aborted) this.errors$.next(error);
        }).finally(() => this.background.delete(tracked));
        this.background.add(tracked);
    }

    /** Subscribes to the broker's presence and resolves once the snapshot of what this peer follows has arrived. */
    protected async followPresence(): Promise<void> {
        await this.presenceFollower.follow();
    }

    /** `answer`: the state of a peer this one just started to watch; it says nothing about a return. */
    protected onPresence(event: PresenceEvent, answer: boolean): void {
        this.presenceSubject.next(event);
        if (answer) return;
        // The broker says the peer is online (in the snapshot or live): give it a fresh circuit. A live
        // "online" (sequence > 0) means it came back: send whatever waits for it.
        if (event.kind === 'online') {
            this.breakers.get(event.peerId)?.reset();
            if (event.sequence > 0) this.inBackground(this.outbox.flush(event.peerId));
            if (event.sequence > 0) this.featureSet.peerOnline(event.peerId, work => this.inBackground(work));
        }
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
        // After a takeover by another process, only an explicit resume takes the ID back.
        if (this.replaced) {
            this.replaced = false;
            this.state$.next('disconnected');
        }
        if (this.state !== 'registered' && !this.reconnecting) this.reconnecting = this.reconnectLoop().finally(() => this.reconnecting = undefined);
        await this.whenRegistered(timeoutMs);
    }

    protected onDisconnected(): void {
        this.watchdog.stop();
        if (this.closing.signal.aborted) return;
        if (this.brokerUrl$.value !== undefined) this.brokerUrl$.next(undefined);
        if (this.transport.lastClose?.code === PEER_REPLACED_CLOSE_CODE) return this.stopReplaced();
        this.state$.next('disconnected');
        if (this.options.reconnect === false || this.reconnecting || this.paused || this.replaced) return;
        // Our broker is lost: with several, the next one is tried first (the lost one last in each round).
        this.nextBroker();
        this.reconnecting = this.reconnectLoop().finally(() => this.reconnecting = undefined);
    }

    /**
     * The broker closed our connection because another client registered this ID with the same reclaim secret or
     * token: another process runs as this peer. Taking the ID back would make the two replace each other forever.
     */
    protected stopReplaced(): void {
        if (this.replaced) return;
        this.replaced = true;
        this.presenceFollower.stop();
        this.state$.next('replaced');
        this.errors$.next(PeerReplaced.for(this.id));
    }

    /** One backoff delay per round over the brokers, so a cluster with one live broker is found within one round. */
    protected async reconnectLoop(): Promise<void> {
        const backoff = { ...defaultBackoff, ...(this.options.reconnect || {}) };
        const stopped = () => this.closing.signal.aborted || this.paused || this.replaced;
        for (let round = 0; !stopped(); round++) {
            const atOnce = round === 0 && this.reconnectAtOnce;
            this.reconnectAtOnce = false;
            if (!atOnce) await sleep(backoffDelay(round, backoff), this.closing.signal);
            for (let tried = 0; tried < this.brokerUrls.length; tried++) {
                if (stopped()) return;
                try {
                    await this.connectOnce();
                    return;
                } catch (error) {
                    this.errors$.next(error as Error);
                    // Connected but not registered (e.g. the ID is taken meanwhile): start over from a clean connection.
                    if (this.client.transporter.isConnected()) await this.client.disconnect();
                    if (this.state !== 'closed' && !this.replaced) this.state$.next('disconnected');
                    this.nextBroker();
                }
            }
        }
    }

    /** Disconnects and releases everything. Safe to call twice. */
    async close(): Promise<void> {
        if (this.closing.signal.aborted) return;
        this.closing.abort();
        this.watchdog.stop();
        this.presenceFollower.stop();
        // A clean close frees our ID at once; a lost connection leaves it held for us (the broker's peerIdGraceMs).
        // Only on a live connection: a call on a dropped one would make Deepkit's client connect again.
        if (this.state === 'registered' && this.client.transporter.isConnected()) await deregisterWithin(this.broker, CLOSE_DEREGISTER_MS);
        await this.client.disconnect();
        this.state$.next('closed');
        this.state$.complete();
        if (this.brokerUrl$.value !== undefined) this.brokerUrl$.next(undefined);
        this.brokerUrl$.complete();
        this.presenceSubject.complete();
        await this.reconnecting;
        await Promise.allSettled([...this.background, this.discovery.idle(), this.outbox.idle()]);
        await this.collab.idle();
        await this.featureSet.close();
        await Promise.allSettled([...this.background]);
        this.errors$.complete();
        await this.database.close();
    }

    async [Symbol.asyncDispose](): Promise<void> {
        await this.close();
    }
}

/** How long close() waits for the broker to confirm the deregister before it just disconnects. */
const CLOSE_DEREGISTER_MS = 2_000;

/** Deregisters, bounded: a broker that does not answer in time holds the ID for its grace period instead. */
async function deregisterWithin(broker: RemoteController<BrokerApi>, timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([broker.deregister().catch(() => undefined), new Promise(resolve => timer = setTimeout(resolve, timeoutMs))]);
    clearTimeout(timer);
}

/**
 * A broker that could not be reached, dropped the connection, stopped answering or could not reach its cluster while
 * we registered.
 */
/** The cause alone: Deepkit's client starts its message with "Could not connect: ", which ours says already. */
function whyUnreachable(error: Error): string {
    return withoutConnectPrefix(error.message);
}

function unreachable(error: unknown): error is Error {
    return error instanceof OfflineError || error instanceof Disconnected || error instanceof Timeout || error instanceof ClusterUnavailable;
}

/**
 * Failures that say something about the target: not our own outage (Timeout while not registered, Disconnected), nor
 * the cluster's (ClusterUnavailable: our broker could not reach the target's).
 */
function blamesTarget(error: unknown): boolean {
    if (error instanceof ClusterUnavailable) return false;
    if (error instanceof PeerOffline || error instanceof PeerNotFound) return true;
    return error instanceof Timeout && error.stage !== 'registration';
}
