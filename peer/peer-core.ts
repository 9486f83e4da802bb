import './dispose-symbol';
import { ClassType } from '@deepkit/core';
import { ControllerDefinition, RemoteController, RpcControllerState } from '@deepkit/rpc';
import { BehaviorSubject, Observable, Subject } from 'rxjs';
import { assertValidPeerId, BrokerApi, PresenceEvent } from '@switchboard/protocol';
import { defaultBackoff } from './backoff';
import { BroadcastOptions, BroadcastResult } from './broadcast';
import { PeerCalls } from './calls/peer-calls';
import { CircuitBreaker } from './circuit-breaker';
import { FeatureApis, FeatureContext, FeatureMap, PeerFeatures } from './feature';
import { PeerKernel } from './kernel';
import { PeerCoreOptions } from './peer-core-options';
import { Outbox } from './outbox';
import { bindPeerInternals } from './peer-internals';
import { PresenceFollower } from './presence-follower';
import { Sealing } from './sealing';
import { CallInvoker, CallOptions, RemotePeer } from './remote-peer';
import { PeerSession, PeerState } from './session/peer-session';
import { OutboxEntry } from './storage/entities';
import { PeerDatabase } from './storage/peer-database';

export type { PeerState } from './session/peer-session';
export type { PeerCoreOptions } from './peer-core-options';

/**
 * A peer with only the features it is given: session (connect, register, reconnect, failover), calls and presence.
 * `Peer` is this plus the built-in features (chat, discovery, relay, files, collab); a browser app that needs only
 * some of them starts a PeerCore with those, and its bundle carries no others:
 *
 * ```ts
 * const alice = await PeerCore.connect({ url, id: 'alice', features: { chat: chat() } });
 * await alice.features.chat.send('bob', 'hi');
 * ```
 */
export class PeerCore<F extends FeatureMap = Record<never, never>> implements CallInvoker {
    readonly id: string;
    /** The brokers this peer may use, in the order it tries them. */
    readonly brokerUrls: readonly string[];
    /**
     * Problems in the background: while reconnecting (e.g. the ID was taken meanwhile; the peer keeps trying), a
     * broker that stopped answering, and PeerReplaced when another process took over this ID (the peer stops).
     */
    readonly errors$ = new Subject<Error>();
    /** The broker's presence stream, kept across reconnects. */
    readonly presence$: Observable<PresenceEvent>;
    readonly appVersion: string;
    /** Messages for offline peers, delivered when they are back. */
    readonly outbox: Outbox;
    /** The features this peer was created with, by name (`options.features`). */
    readonly features: FeatureApis<F>;
    /** This peer's key, its contacts' pinned keys and fingerprints, `keyChanged$` (see PeerOptions.sealing). */
    readonly sealing: Sealing;

    protected readonly presenceSubject = new Subject<PresenceEvent>();
    /** Follows the broker's batched presence by interest (PeerOptions.presence), across reconnects. */
    protected presenceFollower: PresenceFollower;
    protected session: PeerSession;
    protected calls: PeerCalls;
    protected capabilities: string[];
    /** Work started in the background (outbox flushes …) that close() must wait for before closing SQLite. */
    protected background = new Set<Promise<unknown>>();
    protected featureSet: PeerFeatures<F>;
    protected database: PeerDatabase;
    protected kernel: PeerKernel;

    /** `builtins`: features wired before `options.features`, whose APIs a subclass takes as its own members. */
    protected constructor(protected options: PeerCoreOptions<F>, builtins: FeatureMap = {}) {
        assertValidPeerId(options.id);
        this.id = options.id;
        // Without duplicates: the failover walks the list by position of the current URL.
        this.brokerUrls = typeof options.url === 'string' ? [options.url] : [...new Set(options.url)];
        if (!this.brokerUrls.length) throw new TypeError('Peer options: `url` needs at least one broker URL.');
        this.appVersion = options.appVersion ?? '0.0.0';
        this.featureSet = new PeerFeatures(options.features, builtins);
        const database = this.database = new PeerDatabase(options.storage ?? ':memory:', this.featureSet.entities);
        this.presence$ = this.presenceSubject.asObservable();
        this.outbox = new Outbox(database);
        // A key in `:memory:` storage is new at each start: published as such, so contacts do not pin it.
        const ephemeralKey = (options.storage ?? ':memory:') === ':memory:';
        this.sealing = new Sealing(database, this, options.sealing === false ? false : { ephemeral: ephemeralKey, ...options.sealing }, options.clock);
        let kernel: PeerKernel | undefined;
        const context: FeatureContext = {
            peer: this, database, clock: options.clock ?? Date.now, inBackground: work => this.inBackground(work),
            get kernel(): PeerKernel {
                if (!kernel) throw new TypeError('A feature asked for the kernel in setup(); take it later (e.g. in started()).');
                return kernel;
            },
        };
        this.featureSet.setup(context);
        this.features = this.featureSet.apis;
        this.capabilities = this.featureSet.capabilities(options.capabilities ?? []);
        kernel = this.kernel = new PeerKernel([
            { provide: PeerCore, useValue: this },
            { provide: Sealing, useValue: this.sealing },
            ...(this.constructor !== PeerCore ? [{ provide: this.constructor as ClassType, useValue: this }] : []),
            ...this.featureSet.providers,
            ...(options.providers ?? []),
        ]);
        this.session = new PeerSession(options, this.brokerUrls, kernel, database, this.errors$, {
            // This peer's public key is published with the registration, as a capability (see peer.sealing).
            capabilities: () => this.sealing.capabilities(this.capabilities),
            registering: async joinAnnounced => {
                if (!joinAnnounced) {
                    const announced = await this.sealing.capabilities(this.capabilities);
                    if (announced.length) await this.broker.announce(announced);
                }
                this.calls.resetCircuits();
                await this.presenceFollower.follow();
            },
            registered: () => {
                // Whatever is queued from before (a reconnect, or a restart of this process) goes out now where it can.
                this.inBackground(this.outbox.flush());
                this.featureSet.registered(work => this.inBackground(work));
            },
        });
        const session = this.session;
        this.session.onReplaced = () => this.presenceFollower.stop();
        this.presenceFollower = new PresenceFollower(options.presence ?? 'interest', {
            get broker() { return session.broker; },
            get callTimeoutMs() { return session.callTimeoutMs; },
            storedInterest: limit => this.storedInterest(limit),
        }, this.id, (event, answer) => this.onPresence(event, answer), error => this.errors$.next(error));
        this.calls = new PeerCalls(session, {
            retry: { ...defaultBackoff, attempts: 3, ...options.retry },
            circuitBreaker: options.circuitBreaker,
            clock: options.clock,
            contacted: peerId => void this.presenceFollower.watch([peerId]),
            directPath: peerId => this.featureSet.directPath(peerId),
        });
        bindPeerInternals(this, { client: session.client, kernel, database });
        for (const [controller, path] of [...this.featureSet.controllers, ...options.expose ?? []]) kernel.registerController(controller, path);
    }

    /** Connects, registers and announces; rejects with the broker's typed error (PeerIdTaken, AccessDenied, …). */
    static async connect<F extends FeatureMap = Record<never, never>>(options: PeerCoreOptions<F>): Promise<PeerCore<F>> {
        const peer = PeerCore.create(options);
        await peer.start();
        return peer;
    }

    /** A peer that is not connected yet: subscribe to its streams first, then `await start()`. */
    static create<F extends FeatureMap = Record<never, never>>(options: PeerCoreOptions<F>): PeerCore<F> {
        return new PeerCore<F>(options);
    }

    /** Connects, registers and announces (see `connect`). */
    async start(): Promise<void> {
        await this.database.migrate();
        await this.featureSet.started();
        try {
            await this.session.start();
        } catch (error) {
            await this.close();
            throw error;
        }
    }

    get state$(): BehaviorSubject<PeerState> {
        return this.session.state$;
    }

    get state(): PeerState {
        return this.session.state;
    }

    /** The broker of the current connection (undefined while there is none); changes on failover. */
    get brokerUrl$(): BehaviorSubject<string | undefined> {
        return this.session.brokerUrl$;
    }

    /** The broker this peer is connected to; undefined while disconnected. */
    get brokerUrl(): string | undefined {
        return this.session.brokerUrl$.value;
    }

    /** The default call timeout: `options.callTimeoutMs`, else what the broker recommends (set at registration). */
    get callTimeoutMs(): number {
        return this.session.callTimeoutMs;
    }

    /** The broker's own API, for discovery and presence. */
    get broker(): RemoteController<BrokerApi> {
        return this.session.broker;
    }

    /** Serves `controller` to other peers under `path`. Can be called at any time. */
    expose<T>(controller: ClassType<T>, path: string | ControllerDefinition<any>): this {
        this.kernel.registerController(controller, path);
        return this;
    }

    /** Another peer; cached, so its controller proxies (and their types) are reused. */
    to(peerId: string): RemotePeer {
        return this.calls.to(peerId, this);
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
        this.capabilities = this.featureSet.capabilities(capabilities);
        if (this.state === 'registered') await this.broker.announce(await this.sealing.capabilities(this.capabilities));
    }

    announcedCapabilities(): string[] {
        return this.capabilities;
    }

    circuit(peerId: string): CircuitBreaker {
        return this.calls.circuit(peerId);
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
    broadcast<R = unknown>(targets: readonly string[], controller: string | ControllerDefinition<any>, action: string, args: unknown[] = [], options: BroadcastOptions = {}): Promise<BroadcastResult<R>> {
        return this.calls.broadcast<R>(targets, controller, action, args, options);
    }

    /** A feature's better path to `peerId` than the broker (a live direct link), if any: `to(peerId)` calls use it. */
    directPath(peerId: string): CallInvoker | undefined {
        return this.calls.directPath(peerId);
    }

    /**
     * A call through the broker. One deadline for the whole call (registration wait, type load, action, retries): it
     * ends within its timeout. The target's circuit counts only the target's failures; our own outage (not
     * registered, connection lost) is not held against it.
     */
    invoke(peerId: string, controller: RpcControllerState, method: string, args: unknown[], options: CallOptions): Promise<any> {
        return this.calls.invoke(peerId, controller, method, args, options);
    }

    /**
     * Resolves once registered with the broker; Timeout after `timeoutMs`, Disconnected if the peer closes,
     * PeerReplaced if another process took over its ID.
     */
    whenRegistered(timeoutMs?: number): Promise<void> {
        return this.session.whenRegistered(timeoutMs);
    }

    /**
     * Goes offline on purpose (airplane mode): disconnects and stays away until `resume()`. Local work goes on:
     * documents can be edited, chat messages queue up.
     */
    pause(): Promise<void> {
        return this.session.pause();
    }

    /** Comes back after `pause()`: reconnects, re-registers, and resolves once registered. */
    resume(timeoutMs?: number): Promise<void> {
        return this.session.resume(timeoutMs);
    }

    protected inBackground(work: Promise<unknown>): void {
        const tracked = work.catch(error => {
            if (!this.session.closing.signal.aborted) this.errors$.next(error);
        }).finally(() => this.background.delete(tracked));
        this.background.add(tracked);
    }

    /** Who this peer deals with, from storage: outbox recipients and what the features know. */
    protected async storedInterest(limit: number): Promise<string[]> {
        const recipients = await this.database.query(OutboxEntry).select('recipient').groupBy('recipient').limit(limit).find();
        return [...recipients.map(row => row.recipient), ...await this.featureSet.knownPeers(limit)];
    }

    /** `answer`: the state of a peer this one just started to watch; it says nothing about a return. */
    protected onPresence(event: PresenceEvent, answer: boolean): void {
        this.presenceSubject.next(event);
        if (answer) return;
        // The broker says the peer is online (in the snapshot or live): give it a fresh circuit. A live
        // "online" (sequence > 0) means it came back: send whatever waits for it.
        if (event.kind === 'online') {
            this.calls.online(event.peerId);
            if (event.sequence > 0) this.inBackground(this.outbox.flush(event.peerId));
            if (event.sequence > 0) this.featureSet.peerOnline(event.peerId, work => this.inBackground(work));
        }
    }

    /** Disconnects and releases everything. Safe to call twice. */
    async close(): Promise<void> {
        if (this.session.closing.signal.aborted) return;
        this.presenceFollower.stop();
        await this.session.close();
        this.presenceSubject.complete();
        await this.session.idle();
        await Promise.allSettled([...this.background, this.outbox.idle()]);
        await this.featureSet.close();
        await Promise.allSettled([...this.background]);
        this.errors$.complete();
        await this.database.close();
    }

    async [Symbol.asyncDispose](): Promise<void> {
        await this.close();
    }
}
