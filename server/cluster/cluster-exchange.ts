import { randomUUID } from 'crypto';
import { LoggerInterface } from '@deepkit/logger';
import { Subject, Subscription } from 'rxjs';
import { ClusterUnavailable, SwitchboardError } from '@switchboard/protocol';
import { AuditRowLike, BrokerSummary, ExchangeEndpoint, ExchangePresence, FrameOrigin, PeerExchange, PeerLocation, PeerOwner, RegisterOptions, RouteResult } from '../exchange/peer-exchange';
import { BrokerLiveness } from './broker-liveness';
import { BrokerOutbox } from './broker-outbox';
import { BusSubscription, ClusterBus } from './bus/cluster-bus';
import type { ClusterAuditRow } from './cluster-audit';
import { ClusterContext } from './cluster-context';
import { ClusterNames } from './cluster-names';
import { ClusterRegistrations } from './cluster-registrations';
import { ClusterRouting } from './cluster-routing';
import { Directory } from './directory';
import { InFlightCalls } from './in-flight-calls';
import { LivenessLoop } from './liveness-loop';
import { ClusterPeerIdHolds } from './peer-id-holds';

export interface ClusterExchangeOptions {
    /** Brokers with the same cluster name on one bus form one peer namespace; other names never meet them. */
    cluster: string;
    /** Empty: generated. */
    brokerId?: string;
    /** Milliseconds between heartbeats (and directory probes). */
    heartbeatMs: number;
    /** A broker silent for this long is dead; a broker cut off from the bus for this long drops its peers. */
    deathTimeoutMs: number;
    /** The broker's maxPayloadBytes: bounds the batches a broker reassembles from parts. */
    maxPayloadBytes: number;
}

const quietLogger: LoggerInterface = { log() {}, warn() {}, error() {}, info() {}, debug() {}, alert() {} } as unknown as LoggerInterface;

/**
 * The exchange of a broker in a cluster: every broker of the cluster serves one peer namespace. The brokers meet on a
 * cluster bus (server/cluster/bus/cluster-bus.ts): NATS for a deployment (server/cluster/nats-exchange.ts), or the
 * in-memory bus, where several brokers of one process form a cluster (tests). This class only composes the parts,
 * each one job, and owns their start and stop:
 *
 * - Registrations (server/cluster/cluster-registrations.ts): the peer IDs held here, in a KV bucket of the bus per
 *   cluster (server/cluster/directory.ts), whose watch also gives presence.
 * - Routing (server/cluster/cluster-routing.ts): frames published to each broker's inbox subject, enveloped and batched.
 * - Liveness (server/cluster/liveness-loop.ts): heartbeats, death, reaping, a lost and returning link to the bus.
 * - Holds (server/cluster/peer-id-holds.ts): IDs of lost connections, held for their owner across the cluster.
 *
 * What the parts share is server/cluster/cluster-context.ts.
 */
export class ClusterPeerExchange implements PeerExchange {
    readonly brokerId: string;
    protected readonly presenceSubject = new Subject<ExchangePresence>();
    readonly presence = this.presenceSubject.asObservable();

    protected readonly context: ClusterContext;
    /** IDs whose connection was lost, held for their owner across the cluster (RegisterOptions.graceMs). */
    protected readonly holds: ClusterPeerIdHolds;
    protected readonly registrations: ClusterRegistrations;
    protected readonly routing: ClusterRouting;
    protected readonly loop: LivenessLoop;

    protected subscriptions: BusSubscription[] = [];
    protected linkEvents?: Subscription;
    protected starting?: Promise<void>;

    constructor(protected options: ClusterExchangeOptions, protected bus: ClusterBus, protected logger: LoggerInterface = quietLogger) {
        const brokerId = this.brokerId = options.brokerId || randomUUID();
        const names = new ClusterNames(options.cluster);
        const liveness = new BrokerLiveness(brokerId, options.deathTimeoutMs);
        const directory = new Directory(bus, names, brokerId, {
            moved: (peerId, previous, next) => this.registrations.moved(peerId, previous, next),
            presence: event => this.presenceSubject.next(event),
            synced: () => undefined,
        }, logger, Math.max(2_000, options.deathTimeoutMs));
        const inFlight = new InFlightCalls();
        const outbox = new BrokerOutbox(brokerId, bus, names, logger, (brokerId, error) => {
            this.routing.failCalls(inFlight.take(brokerId), '', target => ClusterUnavailable.for(target, `publishing to its broker failed: ${error.message}`));
        });
        this.context = { brokerId, options, logger, names, bus, directory, liveness, inFlight, outbox, endpoints: new Map(), stopped: false, needsRecovery: false };
        this.holds = new ClusterPeerIdHolds(bus, names, logger);
        this.presence.subscribe(event => event.kind === 'online' && this.holds.online(event.peerId));
        this.registrations = new ClusterRegistrations(this.context, this.holds);
        this.routing = new ClusterRouting(this.context, this.registrations.localPeers);
        this.loop = new LivenessLoop(this.context, this.registrations, this.routing);
    }

    /** Bytes of frames this broker published to other brokers so far (metrics, tests). */
    get bytesPublished(): number {
        return this.context.outbox.bytesPublished;
    }

    /** Whether this broker reaches the bus right now. */
    get connected(): boolean {
        return this.context.bus.connected;
    }

    /** Every broker known before this broker's link to the bus last came back has been heard since (tests, status). */
    get hearsEveryBroker(): boolean {
        const { liveness } = this.context;
        return liveness.list().every(broker => !broker.alive || !liveness.unconfirmed(broker.brokerId));
    }

    /** Connected, with a directory watch that is caught up (not being rebuilt). */
    get healthy(): boolean {
        return this.context.bus.connected && this.context.directory.ready && !this.loop.recovering && !this.context.needsRecovery;
    }

    start(): Promise<void> {
        this.starting ??= this.open();
        return this.starting;
    }

    protected async open(): Promise<void> {
        const { bus, names, directory } = this.context;
        this.context.stopped = false;
        await bus.open();
        this.subscriptions.push(bus.subscribe(names.inbox(this.brokerId), data => this.routing.receive(data)));
        this.subscriptions.push(bus.subscribe(names.control, data => this.loop.heartbeat(data)));
        this.linkEvents = bus.events.subscribe(event => event === 'disconnected' ? this.loop.linkLost() : this.loop.linkBack());
        try {
            // reassert: a broker restarted under the same ID finds its previous life's entries, which go.
            await directory.rebuild(() => this.registrations.reassert());
        } catch (error) {
            await bus.close();
            throw this.directoryUnreachable(error as Error);
        }
        await this.opened();
        this.loop.start();
        this.logger.log(`Cluster "${this.options.cluster}" on ${bus.description}: this broker is ${this.brokerId}`);
    }

    /** The bus answers but its directory bucket does not: what `start` throws. */
    protected directoryUnreachable(error: Error): Error {
        return new Error(`The cluster bus (${this.context.bus.description}) answers, but its directory does not (${error.message}).`);
    }

    /** After the directory is built, before the loop starts: what a bus's exchange adds (NATS: the audit stream). */
    protected async opened(): Promise<void> {
    }

    async stop(): Promise<void> {
        if (this.context.stopped) return;
        this.context.stopped = true;
        if (!this.starting) return;
        await this.starting.catch(() => undefined);
        this.loop.stop();
        this.holds.stop();
        // Releasing every ID here tells the other brokers at once, instead of after the death timeout.
        for (const connectionId of [...this.context.endpoints.keys()]) this.detach(connectionId);
        this.context.outbox.flush();
        this.loop.leave();
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([this.context.directory.drain(), new Promise(resolve => timer = setTimeout(resolve, this.options.deathTimeoutMs))]);
        clearTimeout(timer);
        this.linkEvents?.unsubscribe();
        await this.context.directory.close();
        await this.context.bus.close();
    }

    /** Resolves when this broker's writes so far are done and its watch has shown everything up to now (tests). */
    settled(): Promise<void> {
        return this.context.directory.settled();
    }

    // ---- connections and IDs ---------------------------------------------------------------------------------

    attach(endpoint: ExchangeEndpoint): void {
        this.context.endpoints.set(endpoint.connectionId, endpoint);
    }

    detach(connectionId: string): void {
        const entry = this.registrations.held.get(connectionId);
        // The hold is written before the entry's delete: no broker sees the ID free in between.
        if (entry && !this.context.stopped) this.holds.lost(entry);
        if (entry) void this.registrations.release(entry);
        this.holds.forget(connectionId);
        this.context.endpoints.delete(connectionId);
        this.context.inFlight.forgetCaller(connectionId);
    }

    register(peerId: string, connectionId: string, options: RegisterOptions = {}): Promise<void> {
        return this.registrations.register(peerId, connectionId, options);
    }

    deregister(peerId: string, connectionId: string): Promise<void> {
        return this.registrations.deregister(peerId, connectionId);
    }

    lookup(peerId: string): PeerLocation | undefined {
        const entry = this.context.directory.entries.get(peerId);
        return entry && { peerId, connectionId: entry.connectionId, brokerId: entry.brokerId, since: new Date(entry.since) };
    }

    ownerOf(peerId: string): PeerOwner | undefined {
        return this.context.directory.entries.get(peerId)?.owner ?? this.holds.ownerOf(peerId);
    }

    heldUntil(peerId: string): Date | undefined {
        return this.context.directory.entries.has(peerId) ? undefined : this.holds.heldUntil(peerId);
    }

    announce(peerId: string, capabilities: string[]): void {
        this.registrations.announce(peerId, capabilities);
    }

    brokers(): BrokerSummary[] {
        return this.loop.brokers();
    }

    // ---- frames ----------------------------------------------------------------------------------------------

    route(peerId: string, frame: Uint8Array, origin: FrameOrigin): RouteResult {
        return this.routing.route(peerId, frame, origin);
    }

    refusal(peerId: string): SwitchboardError | undefined {
        return this.routing.refusal(peerId);
    }

    reply(connectionId: string, frame: Uint8Array): boolean {
        return this.routing.reply(connectionId, frame);
    }

    recordAudit(row: AuditRowLike): void {
        const { bus, names, stopped } = this.context;
        if (!bus.connected || stopped) return;
        const { kind, at, brokerId, peerId, target, controller, action, reason, session, count, lastAt } = row;
        const travelling: ClusterAuditRow = { kind, at: at.toISOString(), brokerId, peerId, target, controller, action, reason, session, count, lastAt: lastAt?.toISOString() };
        try {
            bus.publish(names.auditSubject(this.brokerId), JSON.stringify(travelling));
        } catch {
            // The link went down: the row is in this broker's database.
        }
    }
}
