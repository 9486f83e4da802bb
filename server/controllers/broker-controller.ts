import { rpc, RpcKernelConnection } from '@deepkit/rpc';
import { Observable, Subscription } from 'rxjs';
import { BrokerApi, Capability, MAX_WATCH_IDS_PER_CALL, PeerFilter, PeerInfo, PresenceBatch, PresenceEvent, Registration, WhoAmI, Joined, JoinOptions, AccessDenied, NotRegistered, PeerNotFound, QuotaExceeded, PeerId, DashboardEvent } from '@switchboard/protocol';
import { MaxLength } from '@deepkit/type';
import { BrokerConfig } from '../config';
import { BrokerConnection } from '../connection';
import { DashboardFeed } from '../dashboard/dashboard-feed';
import { PeerExchange } from '../exchange/peer-exchange';
import { PresenceFanout, PresenceInterest } from '../presence/presence-fanout';
import { PeerRegistry } from '../registry/peer-registry';

/**
 * Live presence and dashboard streams one connection may hold. The SDK needs one; each stream costs the broker work
 * on every presence change, so a client must not multiply it.
 */
export const STREAMS_PER_CONNECTION = 4;

/** The broker's own RPC API: registration, discovery, presence, the dashboard stream. One instance per connection. */
@rpc.controller(BrokerApi)
export class BrokerController implements BrokerApi {
    protected connection: BrokerConnection;
    /** Streams of this connection someone is subscribed to now. */
    protected liveStreams = 0;
    /** The peer IDs this connection watches (`watch`), for its `presenceBatches` streams. */
    protected interest?: PresenceInterest;
    protected presenceFanout: PresenceFanout;

    constructor(
        connection: RpcKernelConnection,
        protected registry: PeerRegistry,
        protected exchange: PeerExchange,
        protected config: BrokerConfig,
        protected dashboardFeed: DashboardFeed,
    ) {
        this.connection = connection as BrokerConnection;
        this.presenceFanout = PresenceFanout.of(registry);
    }

    @rpc.action()
    whoami(): WhoAmI {
        return {
            connectionId: this.connection.connectionId,
            session: this.connection.sessionName,
            authenticated: this.connection.isAuthenticated(),
            peerId: this.connection.peerId,
            authMode: this.config.auth,
            brokerId: this.exchange.brokerId,
            callTimeoutMs: this.config.callTimeoutMs,
            maxPayloadBytes: this.config.maxPayloadBytes,
        };
    }

    @rpc.action()
    async register(peerId: PeerId, reclaimSecret?: string): Promise<Registration> {
        return this.connection.registerPeer(peerId, reclaimSecret);
    }

    @rpc.action()
    async join(peerId: PeerId, options: JoinOptions = {}): Promise<Joined> {
        const registration = await this.register(peerId, options.reclaimSecret);
        const info = options.capabilities?.length ? await this.announce(options.capabilities) : undefined;
        return { registration, info, whoami: this.whoami() };
    }

    @rpc.action()
    async deregister(): Promise<void> {
        await this.connection.deregisterPeer();
    }

    @rpc.action()
    async announce(capabilities: Capability[]): Promise<PeerInfo> {
        const peerId = this.connection.peerId;
        if (!peerId) throw new NotRegistered('Register a peer ID before announcing capabilities.');
        this.exchange.announce(peerId, [...new Set(capabilities)]);
        return this.registry.info(peerId)!;
    }

    @rpc.action()
    listPeers(filter: PeerFilter = {}): PeerInfo[] {
        return this.registry.list(filter);
    }

    @rpc.action()
    getPeer(peerId: PeerId): PeerInfo {
        const info = this.registry.info(peerId);
        if (!info) throw PeerNotFound.for(peerId);
        return info;
    }

    @rpc.action()
    presence(snapshot: boolean = false): Observable<PresenceEvent> {
        this.assertStreamAvailable();
        return this.limited(new Observable<PresenceEvent>(subscriber => {
            if (snapshot) {
                for (const peer of this.registry.list({ online: true })) {
                    subscriber.next(new PresenceEvent('online', peer.id, peer.capabilities, peer.connectedSince ?? peer.lastSeen, 0));
                }
                subscriber.next(new PresenceEvent('synced', '', [], new Date, 0));
            }
            const subscription = this.registry.presence.subscribe(subscriber);
            return () => subscription.unsubscribe();
        }));
    }

    @rpc.action()
    watch(peerIds: PeerId[] & MaxLength<typeof MAX_WATCH_IDS_PER_CALL>): PresenceEvent[] {
        return this.presenceFanout.watch(this.interestOfConnection(), peerIds);
    }

    @rpc.action()
    unwatch(peerIds: PeerId[] & MaxLength<typeof MAX_WATCH_IDS_PER_CALL>): void {
        if (this.interest) this.presenceFanout.unwatch(this.interest, peerIds);
    }

    @rpc.action()
    presenceBatches(everyone: boolean = false): Observable<PresenceBatch> {
        this.assertStreamAvailable();
        const interest = this.interestOfConnection();
        return this.limited(new Observable<PresenceBatch>(subscriber => this.presenceFanout.follow(interest, {
            everyone,
            pending: [],
            send: batch => subscriber.next(batch),
        })));
    }

    @rpc.action()
    dashboard(): Observable<DashboardEvent> {
        // The security class refuses non-admins (and audits it) before this runs; this stays as the last line of defence.
        if (!this.connection.isAdmin()) {
            throw new AccessDenied('The dashboard needs an admin token (`token:create <name> --admin`) in token mode.', 'admin-only');
        }
        this.assertStreamAvailable();
        return this.limited(this.dashboardFeed.stream());
    }

    protected interestOfConnection(): PresenceInterest {
        return this.interest ??= new PresenceInterest(this.connection.connectionId);
    }

    /** Refuses a new stream early, so the caller hears of the limit at the call rather than at its subscription. */
    protected assertStreamAvailable(): void {
        if (this.liveStreams >= STREAMS_PER_CONNECTION) throw this.tooManyStreams();
    }

    /** Counts each subscription (a stream may be subscribed to more than once) against the connection's limit. */
    protected limited<T>(stream: Observable<T>): Observable<T> {
        return new Observable<T>(subscriber => {
            if (this.liveStreams >= STREAMS_PER_CONNECTION) {
                subscriber.error(this.tooManyStreams());
                return;
            }
            this.liveStreams++;
            const subscription: Subscription = stream.subscribe(subscriber);
            return () => {
                this.liveStreams--;
                subscription.unsubscribe();
            };
        });
    }

    protected tooManyStreams(): QuotaExceeded {
        const error = new QuotaExceeded(`This connection follows ${STREAMS_PER_CONNECTION} presence or dashboard streams already, the most one may. `
            + 'Unsubscribe from one you no longer need, or share one subscription in your app.', STREAMS_PER_CONNECTION);
        error.stack = '';
        return error;
    }
}
