// The SDK first: it defines Symbol.asyncDispose where jest's VM contexts lack it, before the kit's class uses it.
import { Peer, PeerOptions } from '@switchboard/peer';
import { BrokerConfig, ClusterBusProvider, RunningBroker, startBroker } from '@switchboard/broker';

export interface SwitchboardTestKitOptions {
    /** Broker settings; defaults: port 0, `:memory:` database, errors-only logging. */
    broker?: Partial<BrokerConfig>;
    /**
     * A bus shared with other kits' brokers (one `new MemoryBus()`): the broker joins the cluster `broker.cluster` on
     * it, so several kits form one cluster in this process, without nats-server.
     */
    clusterBus?: ClusterBusProvider;
    /** Peers to start: an ID, or options without `url`. */
    peers?: (string | Omit<PeerOptions, 'url'>)[];
}

/**
 * A broker and peers in this process, on a free port, for tests of apps built on Switchboard:
 *
 * ```ts
 * await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
 * await kit.peer('alice').to('bob').controller<MyApi>(MyApi.path).hello();
 * ```
 *
 * Without `await using`, call `await kit.close()`; it closes the peers, then the broker.
 */
export class SwitchboardTestKit {
    protected peers = new Map<string, Peer>();

    constructor(readonly broker: RunningBroker) {
    }

    get url(): string {
        return this.broker.url;
    }

    peer(id: string): Peer {
        const peer = this.peers.get(id);
        if (!peer) throw new Error(`No peer "${id}" in this test kit; add it with kit.addPeer("${id}").`);
        return peer;
    }

    /**
     * Starts another peer. `prepare` runs before it connects, to subscribe to streams that may fire while it does.
     */
    async addPeer(options: string | Omit<PeerOptions, 'url'>, prepare?: (peer: Peer) => void): Promise<Peer> {
        const resolved = typeof options === 'string' ? { id: options } : options;
        const peer = Peer.create({ ...resolved, url: this.broker.url });
        prepare?.(peer);
        this.peers.set(peer.id, peer);
        await peer.start();
        return peer;
    }

    async close(): Promise<void> {
        for (const peer of this.peers.values()) await peer.close();
        this.peers.clear();
        await this.broker.close();
    }

    async [Symbol.asyncDispose](): Promise<void> {
        await this.close();
    }
}

export async function startSwitchboard(options: SwitchboardTestKitOptions = {}): Promise<SwitchboardTestKit> {
    const broker = await startBroker({ port: 0, database: ':memory:', logLevel: 'error', ...options.broker }, { clusterBus: options.clusterBus });
    const kit = new SwitchboardTestKit(broker);
    try {
        for (const peer of options.peers ?? []) await kit.addPeer(peer);
    } catch (error) {
        await kit.close();
        throw error;
    }
    return kit;
}
