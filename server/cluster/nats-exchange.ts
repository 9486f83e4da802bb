import { randomUUID } from 'crypto';
import { LoggerInterface } from '@deepkit/logger';
import { RpcTypes } from '@deepkit/rpc';
import type { Subscription as NatsSubscription } from '@nats-io/nats-core';
import { Subject, Subscription } from 'rxjs';
import { ClusterUnavailable, PeerIdTaken, PeerOffline, SwitchboardError } from '@switchboard/protocol/errors';
import { connectionKey, encodeCallerGone, Route, SwitchboardFrame } from '@switchboard/protocol/wire';
import { BrokerConfig } from '../config';
import { AuditRowLike, BrokerSummary, ExchangeEndpoint, ExchangePresence, FrameOrigin, PeerExchange, PeerLocation, PeerOwner, RegisterOptions, RouteResult } from '../exchange/peer-exchange';
import { errorForClient, FINAL_REPLY_TYPES, frameId, frameType, replyErrorFrame, replyErrorFrames, ROUTE_OFFSET, sameBytes, SOURCE_OFFSET } from '../frames';
import { BrokerLiveness } from './broker-liveness';
import { Reaper } from './reaper';
import { BrokerOutbox } from './broker-outbox';
import { ClusterNames } from './cluster-names';
import { Directory, DirectoryUnavailable } from './directory';
import { connectionBytesOf, DirectoryEntry, isConflict, sameOwner } from './directory-entry';
import { BatchReader, decodeOrigin, EnvelopeHandler } from './envelope';
import { CallerCalls, InFlightCalls } from './in-flight-calls';
import { NatsLink, NatsUnreachable } from './nats-link';
import { hasNatsCredentials } from './nats-servers';
import { ClusterAuditRow, ensureAuditStream } from './cluster-audit';
import { ClusterPeerIdHolds } from './peer-id-holds';

export interface NatsExchangeOptions {
    /** NATS server URLs, comma-separated. */
    natsUrl: string;
    /** Brokers with the same cluster name on one NATS form one peer namespace; other names never meet them. */
    cluster: string;
    /** Empty: generated. */
    brokerId?: string;
    /** Milliseconds between heartbeats (and directory probes). */
    heartbeatMs: number;
    /** A broker silent for this long is dead; a broker cut off from NATS for this long drops its peers. */
    deathTimeoutMs: number;
    /** The broker's maxPayloadBytes: bounds the batches a broker reassembles from parts. */
    maxPayloadBytes: number;
    /** The URL may come without credentials (a NATS open to anyone who reaches it): said loudly in the log. */
    natsInsecure?: boolean;
}

export function natsExchangeOptions(config: BrokerConfig): NatsExchangeOptions {
    return {
        natsUrl: config.natsUrl,
        cluster: config.cluster,
        brokerId: config.brokerId,
        heartbeatMs: config.clusterHeartbeatMs,
        deathTimeoutMs: config.clusterDeathTimeoutMs,
        maxPayloadBytes: config.maxPayloadBytes,
        natsInsecure: config.natsInsecure,
    };
}

/** Callers on other brokers this broker remembers (to send their replies back), at most. */
const MAX_REMOTE_CALLERS = 100_000;
const NO_CONNECTION = new Uint8Array(16);
/** Peers here one remote caller is remembered to have called (for CallerGone when its broker dies). */
const MAX_TARGETS_PER_REMOTE_CALLER = 256;
const LINK_DOWN = 'this broker lost its NATS link';
const quietLogger: LoggerInterface = { log() {}, warn() {}, error() {}, info() {}, debug() {}, alert() {} } as unknown as LoggerInterface;

/**
 * The exchange of a broker in a cluster on NATS: every broker of the cluster serves one peer namespace.
 *
 * - Directory: a JetStream KV bucket per cluster (server/cluster/directory.ts). Register = KV create (one winner),
 *   takeover = update at the revision read, release = delete at the revision written (never a newer owner's).
 * - Frames: core NATS, routed per broker, not per peer. Each broker listens on its inbox subject; frames for peers on
 *   another broker are enveloped (server/cluster/envelope.ts) and published to that broker's inbox, batched per
 *   microtask. `route()` stays synchronous: the local directory view says at once whether and where a peer is.
 * - Liveness: heartbeats on the cluster's control subject. Calls in flight to a broker that dies, or while this broker
 *   has lost NATS, end with PeerOffline at once; one broker (KV create on a lock key) reaps a dead broker's entries.
 *   During a NATS outage remote routes fail fast (nothing is buffered to arrive late); local routes go on.
 */
export class NatsPeerExchange implements PeerExchange {
    readonly brokerId: string;
    protected readonly presenceSubject = new Subject<ExchangePresence>();
    readonly presence = this.presenceSubject.asObservable();

    protected readonly names: ClusterNames;
    protected readonly link: NatsLink;
    protected readonly directory: Directory;
    protected readonly liveness: BrokerLiveness;
    protected readonly inFlight = new InFlightCalls();
    protected readonly reader: BatchReader;
    /** IDs whose connection was lost, held for their owner across the cluster (RegisterOptions.graceMs). */
    protected readonly holds: ClusterPeerIdHolds;

    protected endpoints = new Map<string, ExchangeEndpoint>();
    /** connectionId → this broker's directory entry for the peer ID it holds. */
    protected held = new Map<string, DirectoryEntry>();
    /** peerId → connectionId, of the IDs held here. */
    protected localPeers = new Map<string, string>();
    protected readonly outbox: BrokerOutbox;
    /** Caller connection on another broker → that broker: where replies to it go. */
    protected remoteCallers = new Map<string, string>();
    /** Caller connection on another broker → the peers here it called: told CallerGone if its broker dies. */
    protected remoteCallTargets = new Map<string, Set<string>>();
    /** Caller connection → its origin as last received, so an unchanged origin is not decoded again per frame. */
    protected origins = new Map<string, { header: Uint8Array, origin: FrameOrigin }>();
    /** Peer counts per broker, from the last tick. */
    protected peersPerBroker = new Map<string, number>();
    protected readonly reaper: Reaper;
    /** IDs released while NATS was out of reach: deleted when it is back, if the store still names that connection. */
    protected owedReleases = new Map<string, DirectoryEntry>();
    /** This broker's own stalls (a late tick) and NATS blips so far: each voids the liveness evidence gathered before it. */
    protected disturbances = 0;
    protected lastTick = performance.now();
    protected subscriptions: NatsSubscription[] = [];
    protected linkEvents?: Subscription;
    protected timer?: ReturnType<typeof setInterval>;
    protected starting?: Promise<void>;
    protected recovering?: Promise<void>;
    protected needsRecovery = false;
    protected stopped = false;
    protected malformedBatches = 0;
    /** Counts this broker's NATS reconnects; sent with each heartbeat, so the others notice an interruption. */
    protected linkEpoch = 0;

    constructor(protected options: NatsExchangeOptions, protected logger: LoggerInterface = quietLogger) {
        this.brokerId = options.brokerId || randomUUID();
        this.names = new ClusterNames(options.cluster);
        this.link = new NatsLink(options.natsUrl, `switchboard ${options.cluster} ${this.brokerId}`, Math.min(500, options.heartbeatMs));
        this.liveness = new BrokerLiveness(this.brokerId, options.deathTimeoutMs);
        this.directory = new Directory(this.link, this.names, this.brokerId, {
            moved: (peerId, previous, next) => this.moved(peerId, previous, next),
            presence: event => this.presenceSubject.next(event),
            synced: () => undefined,
        }, logger, Math.max(2_000, options.deathTimeoutMs));
        this.reader = new BatchReader(options.maxPayloadBytes + 2 * 1024 * 1024);
        this.outbox = new BrokerOutbox(this.brokerId, this.link, this.names, logger, (brokerId, error) => {
            this.failCalls(this.inFlight.take(brokerId), '', target => ClusterUnavailable.for(target, `publishing to its broker failed: ${error.message}`));
        });
        this.holds = new ClusterPeerIdHolds(this.link, this.names, logger);
        this.presence.subscribe(event => event.kind === 'online' && this.holds.online(event.peerId));
        this.reaper = new Reaper(this.directory, this.liveness, this.brokerId, options.deathTimeoutMs, () => this.disturbances);
    }

    /** Bytes of frames this broker published to other brokers so far (metrics, tests). */
    get bytesPublished(): number {
        return this.outbox.bytesPublished;
    }

    /** Whether this broker reaches NATS right now. */
    get connected(): boolean {
        return this.link.connected;
    }

    /** Every broker known before this broker's NATS link last came back has been heard since (tests, status). */
    get hearsEveryBroker(): boolean {
        return this.liveness.list().every(broker => !broker.alive || !this.liveness.unconfirmed(broker.brokerId));
    }

    /** Connected, with a directory watch that is caught up (not being rebuilt). */
    get healthy(): boolean {
        return this.link.connected && this.directory.ready && !this.recovering && !this.needsRecovery;
    }

    start(): Promise<void> {
        this.starting ??= this.open();
        return this.starting;
    }

    protected async open(): Promise<void> {
        this.stopped = false;
        await this.link.open();
        const nc = this.link.nc;
        this.subscriptions.push(nc.subscribe(this.names.inbox(this.brokerId), { callback: (error, message) => { if (!error) this.receive(message.data); } }));
        this.subscriptions.push(nc.subscribe(this.names.control, { callback: (error, message) => { if (!error) this.heartbeat(message.data); } }));
        this.linkEvents = this.link.events.subscribe(event => event === 'disconnected' ? this.linkLost() : this.linkBack());
        try {
            // reassert: a broker restarted under the same ID finds its previous life's entries, which go.
            await this.directory.rebuild(() => this.reassert());
        } catch (error) {
            await this.link.close();
            throw new NatsUnreachable(`NATS at ${this.link.redactedUrl} answers, but its JetStream directory does not (${(error as Error).message}). Start nats-server with JetStream (-js), and allow this broker's NATS user the cluster's subjects (README: Cluster, NATS permissions).`);
        }
        await ensureAuditStream(this.link.nc, this.names).catch(error => this.logger.warn('Cluster: the cluster audit stream is out of reach; audit rows stay in this broker\'s database', (error as Error).message));
        this.beat();
        this.lastTick = performance.now();
        this.timer = setInterval(() => this.tick(), this.options.heartbeatMs);
        this.timer.unref?.();
        this.logger.log(`Cluster "${this.options.cluster}" on NATS ${this.link.redactedUrl}: this broker is ${this.brokerId}`);
        if (!hasNatsCredentials(this.options.natsUrl)) {
            this.logger.warn('INSECURE: natsInsecure is set and the NATS URL has no credentials. Anyone who reaches this NATS can read the cluster\'s directory and inject frames as any broker. Run nats-server with authorization and per-broker permissions (README: Cluster).');
        }
    }

    async stop(): Promise<void> {
        if (this.stopped) return;
        this.stopped = true;
        if (!this.starting) return;
        await this.starting.catch(() => undefined);
        clearInterval(this.timer);
        this.reaper.stop();
        this.holds.stop();
        // Releasing every ID here tells the other brokers at once, instead of after the death timeout.
        for (const connectionId of [...this.endpoints.keys()]) this.detach(connectionId);
        this.outbox.flush();
        // The others list this broker as gone at once, instead of as dead after the timeout.
        if (this.link.connected) {
            try {
                this.link.nc.publish(this.names.control, JSON.stringify({ b: this.brokerId, leaving: true }));
            } catch {
                // Going anyway.
            }
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([this.directory.drain(), new Promise(resolve => timer = setTimeout(resolve, this.options.deathTimeoutMs))]);
        clearTimeout(timer);
        this.linkEvents?.unsubscribe();
        await this.directory.close();
        await this.link.close();
    }

    /** Resolves when this broker's writes so far are done and its watch has shown everything up to now (tests). */
    settled(): Promise<void> {
        return this.directory.settled();
    }

    // ---- connections and IDs ---------------------------------------------------------------------------------

    attach(endpoint: ExchangeEndpoint): void {
        this.endpoints.set(endpoint.connectionId, endpoint);
    }

    detach(connectionId: string): void {
        const entry = this.held.get(connectionId);
        // The hold is written before the entry's delete: no broker sees the ID free in between.
        if (entry && !this.stopped) this.holds.lost(entry);
        if (entry) void this.release(entry);
        this.holds.forget(connectionId);
        this.endpoints.delete(connectionId);
        this.inFlight.forgetCaller(connectionId);
    }

    async register(peerId: string, connectionId: string, options: RegisterOptions = {}): Promise<void> {
        if (this.held.get(connectionId)?.peerId === peerId) return;
        try {
            if (!this.directory.entries.has(peerId)) await this.holds.assertFree(peerId, options);
            await this.directory.serial(peerId, () => this.claim(peerId, connectionId, options));
            this.holds.registered(connectionId, options);
        } catch (error) {
            if (error instanceof DirectoryUnavailable) throw new ClusterUnavailable(`Peer ID "${peerId}" could not be registered: this broker's view of the cluster directory (NATS) is being rebuilt. Retry in a moment, or connect to another broker.`, peerId, 'directory');
            throw error;
        }
    }

    protected async claim(peerId: string, connectionId: string, options: RegisterOptions): Promise<void> {
        const current = this.directory.entries.get(peerId);
        if (current?.connectionId === connectionId) return;
        const entry: DirectoryEntry = { peerId, brokerId: this.brokerId, connectionId, since: Date.now(), owner: options.owner ?? { session: '' }, capabilities: [], revision: 0 };
        try {
            await this.write(entry, current, options);
        } catch (error) {
            if (!(error instanceof DirectoryUnavailable) || this.link.connected) throw error;
            // NATS went away under the write (it may have landed: reconciling looks at the store first).
            this.claimLocally(entry, current, options);
        }
        if (!this.endpoints.has(connectionId)) {
            // The connection closed while its registration was on the way.
            this.directory.forgetLocal(entry);
            if (entry.pendingBase === undefined) await this.directory.remove(peerId, entry.revision).catch(() => undefined);
            return;
        }
        this.held.set(connectionId, entry);
        this.localPeers.set(peerId, connectionId);
        // The watch may have shown a newer owner before this write's answer came (another broker's takeover right
        // after it): then this claim is already lost, and its connection hears so like any replaced one.
        const now = this.directory.entries.get(peerId);
        if (now && now !== entry && now.connectionId !== connectionId && now.revision > entry.revision) setImmediate(() => this.lose(connectionId, peerId));
    }

    protected async write(entry: DirectoryEntry, current: DirectoryEntry | undefined, options: RegisterOptions): Promise<void> {
        const peerId = entry.peerId;
        if (!this.link.connected) return this.claimLocally(entry, current, options);
        if (!current) {
            try {
                await this.directory.create(entry);
            } catch (error) {
                if (!isConflict(error)) throw error;
                // The local view was behind: someone registered it a moment ago.
                const fresh = await this.directory.fetch(peerId);
                if (fresh) await this.takeOver(entry, fresh, options);
                else await this.directory.create(entry);
            }
        } else {
            await this.takeOver(entry, current, options);
        }
    }

    /**
     * A registration while NATS is out of reach is decided by this broker's view, by the same rules as online, and
     * written when NATS is back (reassert): peers keep (re)connecting to a broker cut off from its cluster, and calls
     * between them go on. A conflicting claim made elsewhere meanwhile is resolved by the store's compare-and-set, so
     * every broker ends with the same holder; the loser's connection is told PeerReplaced.
     */
    protected claimLocally(entry: DirectoryEntry, current: DirectoryEntry | undefined, options: RegisterOptions): void {
        if (current && (!options.takeover || (options.owner && !sameOwner(current.owner, options.owner)))) throw PeerIdTaken.for(entry.peerId);
        entry.revision = 0;
        entry.pendingBase = current ? current.pendingBase ?? current.revision : 0;
        this.directory.setLocal(entry);
        if (current?.brokerId === this.brokerId) this.lose(current.connectionId, entry.peerId);
    }

    /** Replaces a live registration, if the caller proved ownership; the compare-and-set makes a stale view lose. */
    protected async takeOver(entry: DirectoryEntry, current: DirectoryEntry, options: RegisterOptions): Promise<void> {
        if (!options.takeover || (options.owner && !sameOwner(current.owner, options.owner))) throw PeerIdTaken.for(entry.peerId);
        try {
            await this.directory.update(entry, current.revision);
        } catch (error) {
            if (!isConflict(error)) throw error;
            const fresh = await this.directory.fetch(entry.peerId);
            if (!fresh) return this.directory.create(entry);
            if (!options.owner || !sameOwner(fresh.owner, options.owner)) throw PeerIdTaken.for(entry.peerId);
            await this.directory.update(entry, fresh.revision);
            current = fresh;
        }
        if (current.brokerId === this.brokerId) this.lose(current.connectionId, entry.peerId);
    }

    deregister(peerId: string, connectionId: string): Promise<void> {
        const entry = this.held.get(connectionId);
        if (!entry || entry.peerId !== peerId) return Promise.resolve();
        return this.release(entry);
    }

    /** Unroutable at once; the directory entry is deleted behind, at the revision this broker wrote last. */
    protected release(entry: DirectoryEntry): Promise<void> {
        this.held.delete(entry.connectionId);
        if (this.localPeers.get(entry.peerId) === entry.connectionId) this.localPeers.delete(entry.peerId);
        this.directory.forgetLocal(entry);
        if (entry.pendingBase !== undefined) return Promise.resolve(); // never written
        return this.directory.serial(entry.peerId, () => this.directory.remove(entry.peerId, entry.revision)).catch(error => {
            // A newer owner's entry stays; an unreachable directory is cleaned up when NATS is back (reassert).
            if (error instanceof DirectoryUnavailable) this.owedReleases.set(entry.peerId, entry);
            else if (!isConflict(error)) this.logger.warn(`Cluster: could not release peer ID "${entry.peerId}"`, (error as Error).message);
        });
    }

    /** A registration held here was taken by another connection: tell its endpoint (it closes as replaced). */
    protected lose(connectionId: string, peerId: string): void {
        const entry = this.held.get(connectionId);
        if (!entry || entry.peerId !== peerId) return;
        this.held.delete(connectionId);
        if (this.localPeers.get(peerId) === connectionId) this.localPeers.delete(peerId);
        this.endpoints.get(connectionId)?.replaced(peerId);
    }

    /** The watch moved an ID away from what this broker believed. */
    protected moved(peerId: string, previous: DirectoryEntry | undefined, next: DirectoryEntry | undefined): void {
        if (previous?.brokerId !== this.brokerId) return;
        const entry = this.held.get(previous.connectionId);
        if (!entry || entry.peerId !== peerId) return;
        if (next) return this.lose(previous.connectionId, peerId);
        // Deleted under a live connection (a reaper thought this broker dead, or the store was emptied): claim it back.
        void this.directory.serial(peerId, async () => {
            if (this.held.get(entry.connectionId) !== entry) return;
            try {
                await this.directory.create(entry);
            } catch (error) {
                if (isConflict(error)) this.lose(entry.connectionId, peerId);
                else this.needsRecovery = true;
            }
        }).catch(() => undefined);
    }

    lookup(peerId: string): PeerLocation | undefined {
        const entry = this.directory.entries.get(peerId);
        return entry && { peerId, connectionId: entry.connectionId, brokerId: entry.brokerId, since: new Date(entry.since) };
    }

    ownerOf(peerId: string): PeerOwner | undefined {
        return this.directory.entries.get(peerId)?.owner ?? this.holds.ownerOf(peerId);
    }

    heldUntil(peerId: string): Date | undefined {
        return this.directory.entries.has(peerId) ? undefined : this.holds.heldUntil(peerId);
    }

    announce(peerId: string, capabilities: string[]): void {
        const connectionId = this.localPeers.get(peerId);
        const entry = connectionId && this.held.get(connectionId);
        if (!entry) return;
        // Written even if the ID is released before its turn comes (presence then shows it, as on one broker); the
        // release deletes at the revision this write makes.
        void this.directory.serial(peerId, async () => {
            const next = { ...entry, capabilities };
            await this.directory.update(next, entry.revision, this.held.get(entry.connectionId) === entry);
            entry.capabilities = capabilities;
            entry.revision = next.revision;
        }).catch(error => this.logger.warn(`Cluster: could not announce the capabilities of "${peerId}"`, (error as Error).message));
    }

    brokers(): BrokerSummary[] {
        const now = Date.now();
        const summaries: BrokerSummary[] = [{ brokerId: this.brokerId, alive: this.link.connected, peers: this.held.size, lastSeen: new Date(now), heartbeatAgeMs: 0, natsLink: this.link.connected ? 'up' : 'down' }];
        for (const broker of this.liveness.list()) {
            summaries.push({
                ...broker, peers: this.peersPerBroker.get(broker.brokerId) ?? 0,
                heartbeatAgeMs: Math.max(0, now - broker.lastSeen.getTime()), natsLink: broker.alive ? 'up' : 'down',
            });
        }
        return summaries;
    }

    // ---- frames ----------------------------------------------------------------------------------------------

    route(peerId: string, frame: Uint8Array, origin: FrameOrigin): RouteResult {
        const entry = this.directory.entries.get(peerId);
        if (!entry) return false;
        const brokerId = entry.brokerId;
        if (brokerId === this.brokerId) {
            const endpoint = this.endpoints.get(entry.connectionId);
            if (!endpoint || this.localPeers.get(peerId) !== entry.connectionId) return false;
            return endpoint.deliverRequest(frame, origin) === false ? 'busy' : true;
        }
        if (!this.link.connected || !this.liveness.reachable(brokerId) || this.stopped) return false;
        const type = frameType(frame);
        // Tracked before it is queued: a publish that fails at once fails the calls in flight.
        if (type === RpcTypes.Action || type === RpcTypes.ActionType) this.inFlight.add(brokerId, origin.connectionId, !!origin.typedErrors, frameId(frame), peerId);
        this.outbox.request(brokerId, origin, frame);
        return 'forwarded';
    }

    recordAudit(row: AuditRowLike): void {
        if (!this.link.connected || this.stopped) return;
        const { kind, at, brokerId, peerId, target, controller, action, reason, session, count, lastAt } = row;
        const travelling: ClusterAuditRow = { kind, at: at.toISOString(), brokerId, peerId, target, controller, action, reason, session, count, lastAt: lastAt?.toISOString() };
        try {
            this.link.nc.publish(this.names.auditSubject(this.brokerId), JSON.stringify(travelling));
        } catch {
            // The link went down: the row is in this broker's database.
        }
    }

    /** Why `route` refused a peer that the directory places on another broker: the cluster, not the target. */
    refusal(peerId: string): SwitchboardError | undefined {
        const entry = this.directory.entries.get(peerId);
        if (!entry || entry.brokerId === this.brokerId || this.stopped) return undefined;
        if (!this.link.connected) return ClusterUnavailable.for(peerId, LINK_DOWN);
        if (this.liveness.unconfirmed(entry.brokerId)) return ClusterUnavailable.for(peerId, `its broker ${entry.brokerId} has not been heard since this broker's NATS link came back`);
        return undefined;
    }

    reply(connectionId: string, frame: Uint8Array): boolean {
        const endpoint = this.endpoints.get(connectionId);
        if (endpoint) {
            endpoint.deliverReply(frame);
            return true;
        }
        const brokerId = this.remoteCallers.get(connectionId);
        if (!brokerId || !this.link.connected || !this.liveness.reachable(brokerId) || this.stopped) return false;
        this.outbox.reply(brokerId, frame);
        return true;
    }

    protected readonly envelopes: EnvelopeHandler = {
        request: (sender, originHeader, frame) => {
            this.liveness.confirm(sender);
            this.incomingRequest(sender, originHeader, frame);
        },
        reply: (sender, frame) => {
            this.liveness.confirm(sender);
            this.incomingReply(sender, frame);
        },
    };

    protected receive(message: Uint8Array): void {
        if (this.stopped) return;
        try {
            const problem = this.reader.read(message, this.envelopes);
            if (problem && this.malformedBatches++ % 1000 === 0) this.logger.warn(`Cluster: dropped a malformed batch (${problem}); ${this.malformedBatches} so far`);
        } catch (error) {
            this.logger.error('Cluster: a batch failed', error);
        }
    }

    protected incomingRequest(sender: string, originHeader: Uint8Array, frame: Uint8Array): void {
        if (frame[ROUTE_OFFSET] !== Route.peer) return;
        const callerBytes = frame.subarray(SOURCE_OFFSET, SOURCE_OFFSET + 16);
        const caller = connectionKey(callerBytes);
        const peerId = peerIdOf(frame);
        const origin = this.originOf(caller, originHeader);
        const type = frameType(frame);
        const connectionId = this.localPeers.get(peerId);
        const endpoint = connectionId && this.endpoints.get(connectionId);
        if (type === SwitchboardFrame.CallerGone) {
            this.remoteCallers.delete(caller);
            this.remoteCallTargets.delete(caller);
            this.origins.delete(caller);
            if (endpoint) endpoint.deliverRequest(frame, origin);
            return;
        }
        if (this.remoteCallers.get(caller) !== sender) {
            if (this.remoteCallers.size >= MAX_REMOTE_CALLERS) this.remoteCallers.delete(this.remoteCallers.keys().next().value!);
            this.remoteCallers.set(caller, sender);
        }
        // Refused for want of room, the endpoint answers the caller itself.
        if (endpoint) {
            calledHere(this.remoteCallTargets, caller, peerId);
            return void endpoint.deliverRequest(frame, origin);
        }
        // The peer left while the frame was on its way: the caller hears it now, not at its timeout.
        if (type !== RpcTypes.Action && type !== RpcTypes.ActionType) return;
        const error = errorForClient(PeerOffline.for(peerId, new Date, 'went offline before the call reached it'), !!origin.typedErrors);
        this.outbox.reply(sender, replyErrorFrame(frameId(frame), NO_CONNECTION, callerBytes, error));
    }

    protected incomingReply(sender: string, frame: Uint8Array): void {
        if (frame[ROUTE_OFFSET] !== Route.sourceDest || frame.length < SOURCE_OFFSET + 34) return;
        const destination = connectionKey(frame.subarray(SOURCE_OFFSET + 16, SOURCE_OFFSET + 32));
        if (FINAL_REPLY_TYPES.has(frameType(frame))) this.inFlight.settle(sender, destination, frameId(frame));
        this.endpoints.get(destination)?.deliverReply(frame);
    }

    protected originOf(caller: string, header: Uint8Array): FrameOrigin {
        const cached = this.origins.get(caller);
        if (cached && cached.header.length === header.length && sameBytes(header, 0, cached.header)) return cached.origin;
        const origin = decodeOrigin(header, caller);
        if (!cached && this.origins.size >= MAX_REMOTE_CALLERS) this.origins.delete(this.origins.keys().next().value!);
        this.origins.set(caller, { header: header.slice(), origin });
        return origin;
    }

    /** Ends calls whose replies will never come: with PeerOffline (their broker died), or with `errorFor` (say why). */
    protected failCalls(calls: Map<string, CallerCalls>, reason: string, errorFor: (target: string) => SwitchboardError = target => PeerOffline.for(target, new Date, reason)): void {
        for (const [caller, { typedErrors, ids }] of calls) {
            const endpoint = this.endpoints.get(caller);
            if (!endpoint || !ids.size) continue;
            const byTarget = new Map<string, number[]>();
            for (const [id, target] of ids) {
                let list = byTarget.get(target);
                if (!list) byTarget.set(target, list = []);
                list.push(id);
            }
            const destination = Buffer.from(caller, 'hex');
            for (const [target, list] of byTarget) {
                const known = this.directory.entries.get(target);
                const source = known ? connectionBytesOf(known) : NO_CONNECTION;
                const error = errorForClient(errorFor(target), typedErrors);
                for (const frames of replyErrorFrames(list, source, destination, error)) endpoint.deliverReply(frames);
            }
        }
    }

    // ---- liveness --------------------------------------------------------------------------------------------

    protected beat(): void {
        if (!this.link.connected) return;
        try {
            this.link.nc.publish(this.names.control, JSON.stringify({ b: this.brokerId, p: this.held.size, e: this.linkEpoch }));
        } catch {
            // The link went down between the check and the publish; the next tick tries again.
        }
    }

    protected heartbeat(data: Uint8Array): void {
        try {
            const { b, leaving, e } = JSON.parse(new TextDecoder().decode(data)) as { b?: unknown, leaving?: unknown, e?: unknown };
            if (typeof b !== 'string' || b.length > 64 || b === this.brokerId) return;
            if (leaving === true) {
                if (this.liveness.left(b, Date.now())) this.brokerGone(b, 'is on a broker that stopped');
                return;
            }
            if (this.liveness.heard(b, Date.now())) this.logger.log(`Cluster: broker ${b} is back`);
            // Its link was interrupted: what was on the way to it, or back from it, was dropped by NATS. It waits to
            // hear this broker before it sends anything here: a heartbeat at once shortens that wait to a round trip.
            if (typeof e === 'number' && this.liveness.epochChanged(b, e)) {
                this.failCalls(this.inFlight.take(b), '', target => ClusterUnavailable.for(target, `the NATS link of its broker ${b} was interrupted`));
                this.beat();
            }
        } catch {
            // Not a heartbeat.
        }
    }

    protected tick(): void {
        // A tick a quarter of the death timeout late: this broker's loop stood still (GC, SIGSTOP, a VM pause, a
        // blocking handler), and the heartbeats that arrived meanwhile wait unread behind this timer. Their senders'
        // silence is this broker's own: it does not count, and evidence gathered for a reap before it is void. (A live
        // broker looks dead only after heartbeat + stall > death timeout, and the death timeout is at least two
        // beats: smaller lags, common on a busy machine, need not slow death detection down.)
        const late = performance.now() - this.lastTick - this.options.heartbeatMs;
        this.lastTick = performance.now();
        if (late > this.options.deathTimeoutMs / 4) {
            this.disturbances++;
            this.liveness.discount(late);
            if (late > this.options.deathTimeoutMs / 2) this.logger.warn(`Cluster: this broker's event loop stood still for ${Math.round(late)} ms; it re-learns the others' liveness before judging them`);
        }
        if (this.stopped || !this.link.connected) return;
        this.beat();
        const now = Date.now();
        const counts = new Map<string, number>();
        for (const entry of this.directory.entries.values()) counts.set(entry.brokerId, (counts.get(entry.brokerId) ?? 0) + 1);
        this.peersPerBroker = counts;
        for (const brokerId of counts.keys()) this.liveness.noticed(brokerId, now);
        for (const brokerId of this.liveness.check(now)) this.brokerDied(brokerId);
        for (const brokerId of this.liveness.deadBrokers()) {
            if (counts.has(brokerId)) void this.reaper.reap(brokerId);
        }
        if (this.recovering) return;
        this.directory.prune();
        if (this.needsRecovery || this.directory.stalled(3)) {
            void this.recover();
            return;
        }
        this.directory.writeProbe().catch(() => this.needsRecovery = true);
    }

    protected brokerDied(brokerId: string): void {
        this.logger.warn(`Cluster: broker ${brokerId} sent no heartbeat for ${this.options.deathTimeoutMs} ms; it is dead`);
        this.brokerGone(brokerId, 'is on a broker that stopped answering');
    }

    protected brokerGone(brokerId: string, reason: string): void {
        this.failCalls(this.inFlight.take(brokerId), reason);
        this.reader.forget(brokerId);
        this.outbox.drop(brokerId);
        for (const [caller, broker] of this.remoteCallers) {
            if (broker !== brokerId) continue;
            this.remoteCallers.delete(caller);
            this.callerGone(caller);
        }
        void this.reaper.reap(brokerId);
    }

    /**
     * A caller on a broker that died can no longer say it is gone: its peers here hear CallerGone as if it had left,
     * so they stop the streams they serve it and drop its state.
     */
    protected callerGone(caller: string): void {
        const targets = this.remoteCallTargets.get(caller);
        this.remoteCallTargets.delete(caller);
        const origin = this.origins.get(caller)?.origin ?? { connectionId: caller, session: '' };
        this.origins.delete(caller);
        if (!targets) return;
        const callerBytes = Buffer.from(caller, 'hex');
        for (const peerId of targets) {
            const connectionId = this.localPeers.get(peerId);
            const endpoint = connectionId && this.endpoints.get(connectionId);
            if (endpoint) endpoint.deliverRequest(encodeCallerGone(peerId, callerBytes), origin);
        }
    }

    protected linkLost(): void {
        if (this.stopped) return;
        this.disturbances++;
        this.logger.warn('Cluster: lost NATS; peers of this broker stay registered and call each other, calls to peers on other brokers fail with ClusterUnavailable until it is back');
        for (const calls of this.inFlight.takeAll()) this.failCalls(calls, '', target => ClusterUnavailable.for(target, LINK_DOWN));
        this.outbox.drop();
    }

    protected linkBack(): void {
        if (this.stopped) return;
        this.disturbances++;
        this.linkEpoch++;
        this.liveness.restartClocks(Date.now());
        // The others learn at once that this broker is subscribed again (and that its link was interrupted).
        this.beat();
        this.logger.log('Cluster: NATS is back; rebuilding the directory view');
        void this.recover();
    }

    /** A fresh watch (the store may be empty, or the old watch stalled), then this broker's registrations again. */
    protected recover(): Promise<void> {
        this.recovering ??= (async () => {
            this.needsRecovery = false;
            try {
                await this.directory.rebuild(() => this.reassert());
            } catch (error) {
                this.needsRecovery = true;
                this.logger.warn('Cluster: could not rebuild the directory view yet', (error as Error).message);
            } finally {
                this.recovering = undefined;
            }
        })();
        return this.recovering;
    }

    protected async reassert(): Promise<void> {
        const work: Promise<unknown>[] = [];
        for (const entry of this.held.values()) work.push(this.directory.serial(entry.peerId, () => this.reassertOne(entry)));
        for (const [peerId, entry] of this.owedReleases) {
            this.owedReleases.delete(peerId);
            work.push(this.directory.serial(peerId, async () => {
                const fresh = await this.directory.fetch(peerId);
                if (fresh?.connectionId === entry.connectionId) await this.directory.remove(peerId, fresh.revision);
            }).catch(() => undefined));
        }
        // Entries of connections that closed while the directory was out of reach.
        for (const entry of [...this.directory.entries.values()]) {
            if (entry.brokerId !== this.brokerId || entry.pendingBase !== undefined || this.held.get(entry.connectionId)?.peerId === entry.peerId) continue;
            this.directory.forgetLocal(entry);
            work.push(this.directory.serial(entry.peerId, () => this.directory.remove(entry.peerId, entry.revision)).catch(() => undefined));
        }
        await Promise.all(work);
    }

    /**
     * One ID held here, against the store after NATS was out of reach: kept if the store names its connection;
     * written if the store has nothing (an emptied store, or a reap); a claim made during the outage is written with
     * a compare-and-set on what it replaced, so it stands only if nobody wrote the ID meanwhile. Otherwise lost.
     */
    protected async reassertOne(entry: DirectoryEntry): Promise<void> {
        if (this.held.get(entry.connectionId) !== entry) return;
        const fresh = await this.directory.fetch(entry.peerId);
        if (fresh && fresh.connectionId === entry.connectionId) {
            entry.revision = fresh.revision;
            entry.pendingBase = undefined;
            return this.directory.applyLocal(entry);
        }
        const base = entry.pendingBase;
        if (fresh && (base === undefined || fresh.revision !== base)) return this.lost(entry, fresh);
        try {
            if (fresh) await this.directory.update(entry, fresh.revision);
            else await this.directory.create(entry);
            entry.pendingBase = undefined;
        } catch (error) {
            if (!isConflict(error)) throw error;
            this.lost(entry, await this.directory.fetch(entry.peerId));
        }
    }

    /** Reconciling found another holder of an ID held here: the holder here is replaced, the routing view follows the store. */
    protected lost(entry: DirectoryEntry, winner: DirectoryEntry | undefined): void {
        this.lose(entry.connectionId, entry.peerId);
        if (this.directory.entries.get(entry.peerId) !== entry) return;
        this.directory.forgetLocal(entry);
        if (winner) this.directory.applyLocal(winner);
    }
}

/** Remembers that `caller` (on another broker) called `peerId` here; bounded like the callers it belongs to. */
function calledHere(targets: Map<string, Set<string>>, caller: string, peerId: string): void {
    let called = targets.get(caller);
    if (!called) {
        if (targets.size >= MAX_REMOTE_CALLERS) targets.delete(targets.keys().next().value!);
        targets.set(caller, called = new Set());
    }
    if (called.size < MAX_TARGETS_PER_REMOTE_CALLER) called.add(peerId);
}

/** The target peer ID of a peer-routed frame (ASCII, NUL-terminated after the source). */
function peerIdOf(frame: Uint8Array): string {
    let end = SOURCE_OFFSET + 16;
    const limit = Math.min(frame.length, end + 65);
    let id = '';
    while (end < limit && frame[end] !== 0) id += String.fromCharCode(frame[end++]);
    return id;
}
