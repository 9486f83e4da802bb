import { ClassType } from '@deepkit/core';
import { NormalizedProvider } from '@deepkit/injector';
import type { ControllerDefinition, RemoteController } from '@deepkit/rpc';
import type { Observable, Subject } from 'rxjs';
import type { BrokerApi, PresenceEvent } from '@switchboard/protocol';
import type { BroadcastOptions, BroadcastResult } from './broadcast';
import type { Outbox } from './outbox';
import type { Sealing } from './sealing/sealing';
import type { CallInvoker, RemotePeer } from './remote-peer';
import type { PeerKernel } from './kernel';
import type { PeerDatabase } from './storage/peer-database';

/**
 * An opt-in feature of a peer, composed the way js-libp2p composes services: the peer carries only what it is
 * given, and each feature owns its API, storage entities, DI providers, controllers and lifecycle.
 *
 * ```ts
 * // A feature: a factory returning a PeerFeature.
 * export function greeter(options: { greeting?: string } = {}): PeerFeature<GreeterApi> {
 *     return {
 *         entities: [GreetingRecord],                       // tables in the peer's storage
 *         setup(context) {                                  // once, while the Peer is constructed
 *             const service = new GreeterService(context, options);
 *             return {
 *                 api: service,                             // what `peer.features.greeter` is
 *                 providers: [{ provide: GreeterService, useValue: service }],
 *                 controllers: [[GreeterController, GreeterRemoteApi]],
 *                 registered: () => service.resync(),      // after every (re-)registration
 *                 peerOnline: peerId => service.resync(peerId), // another peer came back (live presence)
 *                 close: () => service.idle(),             // awaited before the peer's SQLite closes
 *             };
 *         },
 *     };
 * }
 *
 * // An app: the features are typed by name.
 * const peer = await Peer.connect({ url, id: 'alice', features: { greeter: greeter() } });
 * peer.features.greeter.hello('bob');
 * ```
 */
export interface PeerFeature<Api = unknown> {
    /** Entity classes (`@entity`) this feature stores; added to the peer's database and migrated by `start()`. */
    readonly entities?: readonly ClassType[];
    /**
     * Called once from the Peer's constructor. The peer is not connected yet (and still being constructed): keep
     * `context.peer` for later, call nothing on it here.
     */
    setup(context: FeatureContext): FeatureInstance<Api>;
}

/** What a feature's `setup` returns: its API and what the peer should wire for it. */
export interface FeatureInstance<Api> {
    /** The feature's API: `peer.features.<name>`. */
    api: Api;
    /** DI providers for this feature's controllers (and any controller of the app). */
    providers?: NormalizedProvider[];
    /** Controllers served to other peers from the moment the peer registers. */
    controllers?: [ClassType, string | ControllerDefinition<any>][];
    /** After the database is migrated, before the first connection. */
    started?(): Promise<void> | void;
    /**
     * After every registration (the first, and each one after a reconnect or `resume()`), once presence is followed.
     * Runs in the background: a rejection goes to `peer.errors$`.
     */
    registered?(): Promise<void> | void;
    /** A peer came online while this one is registered (a live presence event). Runs in the background. */
    peerOnline?(peerId: string): Promise<void> | void;
    /** When the peer closes: awaited after the connection is closed and before its storage closes. */
    close?(): Promise<void> | void;
    /** A better path to `peerId` than the broker (e.g. a live direct link), which then takes calls to it. */
    directPath?(peerId: string): CallInvoker | undefined;
    /**
     * Peers this feature's storage says this peer deals with (chat partners, collaborators …), at most `limit`: with
     * `presence: 'interest'` the peer follows their presence from each registration on.
     */
    knownPeers?(limit: number): Promise<Iterable<string>>;
    /** The capabilities to announce, given the app's (e.g. plus one this feature publishes); after every change. */
    capabilities?(announced: string[]): string[];
}

/** The peer as a feature sees it: its ID, calls to other peers, presence and state. */
export interface FeatureHost {
    readonly id: string;
    /** `registered`, `disconnected`, … (see PeerState). */
    readonly state: string;
    readonly state$: Observable<string>;
    /** Presence of the peers this peer follows (by default, the peers it deals with: see `watchPresence`). */
    readonly presence$: Observable<PresenceEvent>;
    /** Follows these peers' presence from now on, so `peerOnline` and presence$ report them. */
    watchPresence(peerIds: Iterable<string>): Promise<void>;
    readonly errors$: Subject<Error>;
    /** Another peer: `host.to('bob').controller<MyApi>(MyApi, { idempotent })`. */
    to(peerId: string): RemotePeer;
    whenRegistered(timeoutMs?: number): Promise<void>;
    /** The default call timeout. */
    readonly callTimeoutMs: number;
    /** A call through the broker, whatever direct path there is. */
    invoke: CallInvoker['invoke'];
    /** One call to many peers in one frame, copied to each by the broker (see Peer.broadcast). */
    broadcast<R = unknown>(targets: readonly string[], controller: string | ControllerDefinition<any>, action: string, args?: unknown[], options?: BroadcastOptions): Promise<BroadcastResult<R>>;
    /** Messages for offline peers, delivered when they are back. */
    readonly outbox: Outbox;
    /** The broker's own API (discovery, presence). */
    readonly broker: RemoteController<BrokerApi>;
    /** `PeerOptions.appVersion`. */
    readonly appVersion: string;
    announcedCapabilities(): string[];
    /** This peer's sealing (keys, sealed payloads), for the features that seal what they send (see PeerOptions.sealing). */
    readonly sealing?: Sealing;
}

export interface FeatureContext {
    readonly peer: FeatureHost;
    /** The peer's storage; write through `database.write(...)` to keep commits ordered. */
    readonly database: PeerDatabase;
    /** The kernel serving this peer's controllers (a feature may serve it over a path of its own); not in `setup`. */
    readonly kernel: PeerKernel;
    /** The peer's clock (milliseconds since the epoch; tests may move it). */
    readonly clock: () => number;
    /** Background work the peer waits for before it closes its storage; a rejection goes to `peer.errors$`. */
    inBackground(work: Promise<unknown>): void;
}

/** The features a peer is created with, by name. */
export type FeatureMap = Record<string, PeerFeature<any>>;

/** `peer.features`: each feature's API under its name. */
export type FeatureApis<F extends FeatureMap> = { readonly [K in keyof F]: F[K] extends PeerFeature<infer Api> ? Api : never };

/**
 * The features of one peer, wired in the order given. Kept out of Peer so peer.ts only calls its hooks.
 */
export class PeerFeatures<F extends FeatureMap> {
    readonly entities: ClassType[];
    readonly apis = {} as FeatureApis<F>;
    /** The APIs of the built-in features `Peer` carries as its own members (`peer.chat` …), by name. */
    readonly builtinApis: Record<string, unknown> = {};
    readonly providers: NormalizedProvider[] = [];
    readonly controllers: [ClassType, string | ControllerDefinition<any>][] = [];
    protected instances: FeatureInstance<unknown>[] = [];

    /** `builtins` are wired first, in the order given, and their APIs go to `builtinApis`, not `apis`. */
    constructor(protected features: F = {} as F, protected builtins: FeatureMap = {}) {
        this.entities = [...Object.values(builtins), ...Object.values(features)].flatMap(feature => [...feature.entities ?? []]);
    }

    setup(context: FeatureContext): void {
        for (const [name, feature] of Object.entries(this.builtins)) {
            const instance = feature.setup(context);
            this.builtinApis[name] = instance.api;
            this.add(instance);
        }
        for (const [name, feature] of Object.entries(this.features)) {
            const instance = feature.setup(context);
            (this.apis as Record<string, unknown>)[name] = instance.api;
            this.add(instance);
        }
    }

    protected add(instance: FeatureInstance<unknown>): void {
        this.providers.push(...instance.providers ?? []);
        this.controllers.push(...instance.controllers ?? []);
        this.instances.push(instance);
    }

    async started(): Promise<void> {
        for (const instance of this.instances) await instance.started?.();
    }

    registered(inBackground: (work: Promise<unknown>) => void): void {
        for (const instance of this.instances) if (instance.registered) inBackground(Promise.resolve().then(() => instance.registered!()));
    }

    peerOnline(peerId: string, inBackground: (work: Promise<unknown>) => void): void {
        for (const instance of this.instances) if (instance.peerOnline) inBackground(Promise.resolve().then(() => instance.peerOnline!(peerId)));
    }

    /** The app's capabilities as each feature extends them (see FeatureInstance.capabilities). */
    capabilities(announced: string[]): string[] {
        return this.instances.reduce((capabilities, instance) => instance.capabilities?.(capabilities) ?? capabilities, announced);
    }

    /** Every feature's known peers (see FeatureInstance.knownPeers). */
    async knownPeers(limit: number): Promise<string[]> {
        const ids: string[] = [];
        for (const instance of this.instances) if (instance.knownPeers) ids.push(...await instance.knownPeers(limit));
        return ids;
    }

    /** The first direct path a feature offers to `peerId`. */
    directPath(peerId: string): CallInvoker | undefined {
        for (const instance of this.instances) {
            const path = instance.directPath?.(peerId);
            if (path) return path;
        }
        return undefined;
    }

    /** Every feature's close, each awaited even if another fails. */
    async close(): Promise<void> {
        await Promise.allSettled(this.instances.map(instance => Promise.resolve().then(() => instance.close?.())));
    }
}
