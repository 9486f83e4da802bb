import { Subject } from 'rxjs';
import { randomUUID } from 'crypto';
import { PeerIdTaken } from '@switchboard/protocol';
import { BrokerSummary, ExchangeEndpoint, ExchangePresence, FrameOrigin, PeerExchange, PeerLocation, PeerOwner, RegisterOptions, RouteResult } from './peer-exchange';
import { HeldPeerIds } from './held-peer-ids';

/**
 * The exchange for a single broker process: every peer's connection is in this process. A real implementation,
 * not a stand-in: it is what `npm start` runs.
 */
export class InProcessPeerExchange implements PeerExchange {
    readonly brokerId: string;
    protected readonly presenceSubject = new Subject<ExchangePresence>();
    readonly presence = this.presenceSubject.asObservable();

    protected endpoints = new Map<string, ExchangeEndpoint>();
    protected locations = new Map<string, PeerLocation>();
    /** connectionId → the peer ID it holds, so detach can release it without a scan. */
    protected peerOfConnection = new Map<string, string>();
    /** Of online IDs only: the registry keeps the last-known capabilities of offline peers. */
    protected capabilities = new Map<string, string[]>();
    /** Of online IDs only, like capabilities. */
    protected owners = new Map<string, PeerOwner>();
    /** Of online IDs: how long each stays held for its owner once its connection is lost. */
    protected graces = new Map<string, number>();
    /** IDs whose connection was lost, held for their owner. */
    protected held = new HeldPeerIds();
    protected stopped = false;

    constructor(brokerId?: string) {
        this.brokerId = brokerId || randomUUID();
    }

    async start(): Promise<void> {
        this.stopped = false;
    }

    async stop(): Promise<void> {
        if (this.stopped) return;
        this.stopped = true;
        for (const connectionId of [...this.endpoints.keys()]) this.detach(connectionId);
        this.held.clear();
    }

    attach(endpoint: ExchangeEndpoint): void {
        this.endpoints.set(endpoint.connectionId, endpoint);
    }

    detach(connectionId: string): void {
        const peerId = this.peerOfConnection.get(connectionId);
        if (peerId !== undefined) this.release(peerId, connectionId, true);
        this.endpoints.delete(connectionId);
    }

    async register(peerId: string, connectionId: string, options: RegisterOptions = {}): Promise<void> {
        const current = this.locations.get(peerId);
        if (current && current.connectionId === connectionId) return;
        const heldUntil = this.held.until(peerId);
        if (heldUntil && !options.takeover) throw PeerIdTaken.held(peerId, heldUntil);
        this.held.release(peerId);
        if (current) {
            if (!options.takeover) throw PeerIdTaken.for(peerId);
            const stale = this.endpoints.get(current.connectionId);
            this.release(peerId, current.connectionId);
            stale?.replaced(peerId);
        }
        this.locations.set(peerId, { peerId, connectionId, brokerId: this.brokerId, since: new Date });
        this.peerOfConnection.set(connectionId, peerId);
        if (options.owner) this.owners.set(peerId, options.owner);
        if (options.graceMs) this.graces.set(peerId, options.graceMs);
        this.emit('online', peerId);
    }

    async deregister(peerId: string, connectionId: string): Promise<void> {
        this.release(peerId, connectionId);
    }

    lookup(peerId: string): PeerLocation | undefined {
        return this.locations.get(peerId);
    }

    ownerOf(peerId: string): PeerOwner | undefined {
        return this.owners.get(peerId) ?? this.held.ownerOf(peerId);
    }

    heldUntil(peerId: string): Date | undefined {
        return this.held.until(peerId);
    }

    route(peerId: string, frame: Uint8Array, origin: FrameOrigin): RouteResult {
        const endpoint = this.endpointOf(peerId);
        if (!endpoint) return false;
        return endpoint.deliverRequest(frame, origin) === false ? 'busy' : true;
    }

    routeParts(peerId: string, header: Uint8Array, body: Uint8Array, origin: FrameOrigin): RouteResult {
        const endpoint = this.endpointOf(peerId);
        if (!endpoint) return false;
        const delivered = endpoint.deliverRequestParts
            ? endpoint.deliverRequestParts(header, body, origin)
            : endpoint.deliverRequest(Buffer.concat([header, body]), origin);
        return delivered === false ? 'busy' : true;
    }

    protected endpointOf(peerId: string): ExchangeEndpoint | undefined {
        const location = this.locations.get(peerId);
        return location && this.endpoints.get(location.connectionId);
    }

    reply(connectionId: string, frame: Uint8Array): boolean {
        const endpoint = this.endpoints.get(connectionId);
        if (!endpoint) return false;
        endpoint.deliverReply(frame);
        return true;
    }

    announce(peerId: string, capabilities: string[]): void {
        // An ID that is not online (it went offline while its announcement was on the way) keeps nothing here.
        if (!this.locations.has(peerId)) return;
        this.capabilities.set(peerId, capabilities);
        this.emit('capabilities', peerId);
    }

    brokers(): BrokerSummary[] {
        return [{ brokerId: this.brokerId, alive: true, peers: this.locations.size, lastSeen: new Date }];
    }

    /** @param lost the connection was lost (detach): hold the ID for its owner for its grace period */
    protected release(peerId: string, connectionId: string, lost = false): void {
        const current = this.locations.get(peerId);
        if (!current || current.connectionId !== connectionId) return;
        this.locations.delete(peerId);
        this.peerOfConnection.delete(connectionId);
        const owner = this.owners.get(peerId);
        const graceMs = this.graces.get(peerId) ?? 0;
        const heldUntil = lost && owner && graceMs > 0 && !this.stopped ? this.held.hold(peerId, owner, graceMs) : undefined;
        this.emit('offline', peerId, heldUntil);
        this.capabilities.delete(peerId);
        this.owners.delete(peerId);
        this.graces.delete(peerId);
    }

    protected emit(kind: ExchangePresence['kind'], peerId: string, heldUntil?: Date): void {
        if (this.stopped) return;
        this.presenceSubject.next({ kind, peerId, capabilities: this.capabilities.get(peerId) ?? [], at: new Date, heldUntil });
    }
}
