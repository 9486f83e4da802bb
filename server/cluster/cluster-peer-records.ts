import { LoggerInterface } from '@deepkit/logger';
import { cast, typeOf } from '@deepkit/type';
import type { BusWatch } from './bus/cluster-bus';
import { SharedPeerRecord, SharedRegistry } from '../registry/peer-registry';
import { PEER_KEY_PREFIX, peerIdOfKey, peerKey, probeKey } from './cluster-names';
import { ClusterState, ClusterStateUnavailable } from './cluster-state';

const decoder = new TextDecoder();

/**
 * The cluster's registry history in a JetStream KV bucket (`switchboard_<cluster>_peers`): per peer ID its
 * capabilities, first/last seen and last owner, so a broker started later knows the peers that went offline before it
 * came, and when they were first seen. Presence itself comes from the directory (every broker follows it); this
 * bucket only keeps what the directory forgets when a peer goes.
 *
 * Writes are coalesced: at most one put per peer ID each `flushMs`, whatever happened to it meanwhile, and only on
 * registry changes (register, announce, offline), never per call. While NATS is away they wait (one per peer ID).
 */
export class ClusterPeerRecords implements SharedRegistry {
    protected pending = new Map<string, SharedPeerRecord | undefined>();
    protected timer?: ReturnType<typeof setTimeout>;
    protected flushing: Promise<void> = Promise.resolve();
    protected watcher?: BusWatch;
    protected generation = 0;
    protected apply?: (peerId: string, record: SharedPeerRecord) => void;
    protected stopReconnect?: () => void;
    protected marker = 0;
    protected markerWaiter?: { value: number, resolve: () => void };
    protected closed = false;

    constructor(
        protected state: ClusterState,
        readonly brokerId: string,
        protected logger: LoggerInterface,
        protected syncTimeoutMs = 5_000,
        protected flushMs = 200,
    ) {
    }

    async open(apply: (peerId: string, record: SharedPeerRecord) => void): Promise<void> {
        this.apply = apply;
        await this.follow();
        this.stopReconnect = this.state.onReconnect(() => void this.follow().catch(error => {
            if (!this.closed) this.logger.warn('Cluster registry: could not follow the registry bucket again yet', (error as Error).message);
        }));
    }

    write(peerId: string, record: SharedPeerRecord): void {
        this.schedule(peerId, record);
    }

    remove(peerIds: string[]): void {
        for (const peerId of peerIds) this.schedule(peerId, undefined);
    }

    /** Stops following, then writes what is pending (if NATS is there). */
    async close(): Promise<void> {
        if (this.closed) return;
        // Stops following first: nothing reaches the registry once it closes.
        this.generation++;
        this.stopReconnect?.();
        void this.watcher?.stop();
        this.markerWaiter?.resolve();
        await this.flush();
        this.closed = true;
    }

    protected schedule(peerId: string, record: SharedPeerRecord | undefined): void {
        if (this.closed) return;
        this.pending.set(peerId, record);
        if (!this.timer) {
            this.timer = setTimeout(() => void this.flush(), this.flushMs);
            this.timer.unref?.();
        }
    }

    protected flush(): Promise<void> {
        clearTimeout(this.timer);
        this.timer = undefined;
        this.flushing = this.flushing.then(async () => {
            if (!this.pending.size) return;
            if (!this.state.connected) {
                if (!this.closed && !this.timer) this.timer = setTimeout(() => void this.flush(), this.flushMs);
                return;
            }
            const writes = [...this.pending];
            this.pending.clear();
            try {
                const kv = await this.state.bucket('peers');
                await Promise.all(writes.map(([peerId, record]) => record
                    ? kv.put(peerKey(peerId), JSON.stringify(record))
                    : kv.delete(peerKey(peerId))));
            } catch (error) {
                this.logger.warn('Cluster registry: could not write peer records', (error as Error).message);
            }
        });
        return this.flushing;
    }

    /**
     * A fresh watch over the bucket; resolves once it has shown every record written before it started. The end of
     * that snapshot is a marker this broker writes after starting the watch (the directory's probe approach): the
     * watch shows keys in the order they were written.
     */
    protected async follow(): Promise<void> {
        const generation = ++this.generation;
        const kv = await this.state.bucket('peers');
        if (generation !== this.generation) return;
        void this.watcher?.stop();
        const watcher = await kv.watch();
        this.watcher = watcher;
        const marker = ++this.marker;
        const caughtUp = new Promise<void>(resolve => this.markerWaiter = { value: marker, resolve });
        void this.read(watcher, generation);
        await kv.put(probeKey(this.brokerId), String(marker));
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<never>((_, reject) => timer = setTimeout(() => reject(new ClusterStateUnavailable('The cluster registry watch did not catch up in time.')), this.syncTimeoutMs));
        try {
            await Promise.race([caughtUp, late]);
        } finally {
            clearTimeout(timer);
        }
    }

    protected async read(watcher: BusWatch, generation: number): Promise<void> {
        try {
            for await (const update of watcher) {
                if (generation !== this.generation) return;
                if (update.key === probeKey(this.brokerId)) {
                    const value = Number(decoder.decode(update.value));
                    if (this.markerWaiter && value >= this.markerWaiter.value) this.markerWaiter.resolve();
                } else if (update.key.startsWith(PEER_KEY_PREFIX) && update.operation === 'PUT') {
                    // Deletions are registry bounds each broker applies on its own.
                    const record = decode(update.value);
                    if (record) this.apply?.(peerIdOfKey(update.key), record);
                }
            }
        } catch (error) {
            if (generation === this.generation && !this.closed) this.logger.warn('Cluster registry watch ended', (error as Error).message);
        }
    }
}

/**
 * Resolved once, where a missing runtime type fails loudly instead of turning every record invalid: written as
 * `cast<SharedPeerRecord>(…)` inside this function's bare `catch {}`, Deepkit's type compiler (1.0.19) lost the
 * imported interface's type and every record failed to decode.
 */
const recordType = typeOf<SharedPeerRecord>();

/** Only brokers write the bucket, but a record that does not validate is not applied. */
function decode(value: Uint8Array): SharedPeerRecord | undefined {
    try {
        return cast<SharedPeerRecord>(JSON.parse(decoder.decode(value)), undefined, undefined, undefined, recordType);
    } catch {
        return undefined;
    }
}
