import { RemoteController, RpcTypes } from '@deepkit/rpc';
import { BehaviorSubject, firstValueFrom, Subject } from 'rxjs';
import { filter } from 'rxjs/operators';
import WebSocket from 'ws';
import { BrokerApi, Disconnected, NotFound, PEER_REPLACED_CLOSE_CODE, PeerReplaced, Registration, WhoAmI } from '@switchboard/protocol';
import { BackoffOptions, defaultBackoff } from '../backoff';
import { BrokerMove } from '../broker-move';
import { CallDeadline } from '../call-deadline';
import { ConnectionWatchdog } from '../connection-watchdog';
import { PeerKernel } from '../kernel';
import { PeerClient } from '../peer-client';
import { PeerDatabase } from '../storage/peer-database';
import { WebSocketTransport } from '../websocket-transport';
import { BrokerRounds } from './broker-rounds';

/**
 * `replaced`: another process took this peer ID over with the same reclaim secret or token; the peer stopped and
 * stays away (errors$ carries PeerReplaced). `closed` and `replaced` are final, but for `resume()` after `replaced`.
 */
export type PeerState = 'disconnected' | 'connecting' | 'connected' | 'registered' | 'replaced' | 'closed';

/** The part of PeerOptions the session reads. */
export interface SessionOptions {
    url: string | string[];
    id: string;
    token?: string;
    connectTimeoutMs?: number;
    callTimeoutMs?: number;
    reconnect?: Partial<BackoffOptions> | false;
    pingIntervalMs?: number;
    webSocket?: unknown;
}

/** What the rest of the peer does around a registration. */
export interface SessionHooks {
    /** What to announce with the registration (the join sends both in one round trip). */
    capabilities?(): Promise<string[]>;
    /**
     * Registered with the broker, not yet `registered` to the world: announce (unless `announced` with the join),
     * follow presence, reset circuits.
     */
    registering(announced: boolean): Promise<void>;
    /** Now `registered`: start what waited for it (outbox flushes, features). */
    registered(): void;
}

const RECLAIM_SECRET = 'reclaim-secret:';
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** How long close() waits for the broker to confirm the deregister before it just disconnects. */
const CLOSE_DEREGISTER_MS = 2_000;

/**
 * One peer's life with its brokers: connect to any of them, register (with the reclaim secret), reconnect with
 * backoff and fail over, leave a draining broker, the ping watchdog, pause/resume, being replaced, and close.
 */
export class PeerSession {
    readonly state$ = new BehaviorSubject<PeerState>('disconnected');
    readonly brokerUrl$ = new BehaviorSubject<string | undefined>(undefined);
    readonly client: PeerClient;
    readonly closing = new AbortController();
    /** Moving off a draining broker: our calls in flight, and the move under way. */
    readonly move = new BrokerMove();
    callTimeoutMs = 30_000;
    protected readonly transport: WebSocketTransport;
    protected readonly watchdog: ConnectionWatchdog;
    protected readonly rounds: BrokerRounds;
    protected brokerProxy?: { timeout: number, proxy: RemoteController<BrokerApi> };
    protected reconnecting?: Promise<void>;
    protected paused = false;
    /** Another process took over this ID: no reconnecting until `resume()`. */
    protected replaced = false;
    /** The next reconnect round starts without its backoff delay (leaving a draining broker). */
    protected reconnectAtOnce = false;

    constructor(
        protected options: SessionOptions,
        readonly brokerUrls: readonly string[],
        kernel: PeerKernel,
        protected database: PeerDatabase,
        protected errors$: Subject<Error>,
        protected hooks: SessionHooks,
    ) {
        const webSocket = (options.webSocket ?? globalThis.WebSocket ?? WebSocket) as any;
        this.transport = new WebSocketTransport(this.brokerUrls[0], webSocket);
        this.client = new PeerClient(this.transport, kernel);
        const pingIntervalMs = options.pingIntervalMs ?? 15_000;
        this.watchdog = new ConnectionWatchdog(pingIntervalMs, () => this.transport.messagesReceived, () => this.ping(), () => {
            this.errors$.next(new Disconnected(`The broker answered no ping for ${2 * pingIntervalMs} ms (frozen, or a half-open connection); reconnecting.`));
            this.transport.abort('The broker stopped answering pings.');
        });
        const session = this;
        this.rounds = new BrokerRounds(this.brokerUrls, { ...defaultBackoff, ...(options.reconnect || {}) }, options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, this.closing.signal, {
            get url() { return session.transport.url; },
            set url(url: string) { session.transport.url = url; },
            connectOnce: () => this.connectOnce(),
            dropConnection: async () => {
                if (this.client.transporter.isConnected()) await this.client.disconnect();
            },
            report: error => this.errors$.next(error),
        });
        if (options.token) this.client.token.set(options.token);
        this.client.drain$.subscribe(() => this.leaveDrainingBroker());
    }

    get state(): PeerState {
        return this.state$.value;
    }

    /** The broker's own API, its types known here (no type round trip on connect). */
    get broker(): RemoteController<BrokerApi> {
        if (this.brokerProxy?.timeout !== this.callTimeoutMs) {
            this.brokerProxy = { timeout: this.callTimeoutMs, proxy: this.client.knownController<BrokerApi>(BrokerApi, { timeout: this.callTimeoutMs }) };
        }
        return this.brokerProxy.proxy;
    }

    /** The first connection (see PeerCore.start); then reconnects whenever the connection is lost. */
    async start(): Promise<void> {
        await this.rounds.connectToAny();
        this.client.transporter.disconnected.subscribe(() => this.onDisconnected());
    }

    /** Resolves once registered; Timeout after `timeoutMs`, Disconnected if closed, PeerReplaced if replaced. */
    async whenRegistered(timeoutMs: number = this.callTimeoutMs): Promise<void> {
        if (this.state === 'registered') return;
        const deadline = new CallDeadline(timeoutMs, 'the broker');
        try {
            await deadline.within('registration', this.registeredOrStopped());
        } finally {
            deadline.end();
        }
    }

    async registeredOrStopped(): Promise<void> {
        this.assertRunning();
        const state = await firstValueFrom(this.state$.pipe(filter(s => s === 'registered' || s === 'closed' || s === 'replaced')));
        if (state !== 'registered') this.assertRunning();
    }

    protected assertRunning(): void {
        if (this.state === 'closed') throw new Disconnected('This peer is closed.');
        if (this.state === 'replaced') throw PeerReplaced.for(this.options.id);
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
        const secretKey = RECLAIM_SECRET + this.options.id;
        const [secret, capabilities] = await Promise.all([this.database.getSetting(secretKey), this.hooks.capabilities?.() ?? []]);
        // Frames for our ID (CallerIdentity first) can arrive before the registration's answer: serve them from now on.
        this.client.servedPeerId = this.options.id;
        const { registration, whoami, announced } = await this.join(secret, capabilities);
        this.callTimeoutMs = this.options.callTimeoutMs ?? whoami.callTimeoutMs;
        if (registration.reclaimSecret && registration.reclaimSecret !== secret) await this.database.setSetting(secretKey, registration.reclaimSecret);
        await this.hooks.registering(announced);
        this.state$.next('registered');
        this.hooks.registered();
    }

    /** Registers and announces in one round trip (`join`); a broker without it gets whoami and register, as before. */
    protected async join(secret: string | undefined, capabilities: string[]): Promise<{ registration: Registration, whoami: WhoAmI, announced: boolean }> {
        try {
            const joined = await this.broker.join(this.options.id, { reclaimSecret: secret, capabilities });
            return { registration: joined.registration, whoami: joined.whoami, announced: true };
        } catch (error) {
            if (!(error instanceof NotFound) || error.what !== 'action') throw error;
        }
        const whoami = await this.broker.whoami();
        return { registration: await this.broker.register(this.options.id, secret), whoami, announced: false };
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

    /** `onReplaced`: the peer's own reaction to a takeover (stop following presence). */
    onReplaced?: () => void;

    protected onDisconnected(): void {
        this.watchdog.stop();
        if (this.closing.signal.aborted) return;
        if (this.brokerUrl$.value !== undefined) this.brokerUrl$.next(undefined);
        if (this.transport.lastClose?.code === PEER_REPLACED_CLOSE_CODE) return this.stopReplaced();
        this.state$.next('disconnected');
        if (this.options.reconnect === false || this.reconnecting || this.paused || this.replaced) return;
        // Our broker is lost: with several, the next one is tried first (the lost one last in each round).
        this.rounds.next();
        this.reconnecting = this.reconnectLoop().finally(() => this.reconnecting = undefined);
    }

    /**
     * The broker closed our connection because another client registered this ID with the same reclaim secret or
     * token: another process runs as this peer. Taking the ID back would make the two replace each other forever.
     */
    protected stopReplaced(): void {
        if (this.replaced) return;
        this.replaced = true;
        this.onReplaced?.();
        this.state$.next('replaced');
        this.errors$.next(PeerReplaced.for(this.options.id));
    }

    protected reconnectLoop(): Promise<void> {
        return this.rounds.reconnect(
            () => this.closing.signal.aborted || this.paused || this.replaced,
            () => {
                const atOnce = this.reconnectAtOnce;
                this.reconnectAtOnce = false;
                return atOnce;
            },
            () => {
                if (this.state !== 'closed' && !this.replaced) this.state$.next('disconnected');
            },
        );
    }

    /**
     * Ends the connection: deregisters (a clean close frees our ID at once; a lost connection leaves it held for us,
     * the broker's peerIdGraceMs), disconnects and completes the streams. Returns once no reconnect runs any more.
     */
    async close(): Promise<void> {
        this.closing.abort();
        this.watchdog.stop();
        // Only on a live connection: a call on a dropped one would make Deepkit's client connect again.
        if (this.state === 'registered' && this.client.transporter.isConnected()) await deregisterWithin(this.broker, CLOSE_DEREGISTER_MS);
        // No connection may start any more (a call still running would make Deepkit's client connect again), and one
        // being opened (a reconnect under way) is dropped: Deepkit's disconnect waits for it, and could wait forever.
        this.transport.refuseConnections('This peer is closed.');
        if (!this.client.transporter.isConnected()) this.transport.abort('This peer is closed.');
        await this.client.disconnect();
        this.state$.next('closed');
        this.state$.complete();
        if (this.brokerUrl$.value !== undefined) this.brokerUrl$.next(undefined);
        this.brokerUrl$.complete();
    }

    /** Waits for a reconnect under way to give up (after `close()`). */
    async idle(): Promise<void> {
        await this.reconnecting;
    }
}

/** Deregisters, bounded: a broker that does not answer in time holds the ID for its grace period instead. */
async function deregisterWithin(broker: RemoteController<BrokerApi>, timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([broker.deregister().catch(() => undefined), new Promise(resolve => timer = setTimeout(resolve, timeoutMs))]);
    clearTimeout(timer);
}
