import { Subject } from 'rxjs';
import { BusEvent, BusKeyValue, BusSubscription, bytesOf, ClusterBus, ClusterBusProvider, KeyValueOptions, subjectMatches } from './cluster-bus';
import { MemoryBucket, MemoryKeyValue, MemoryWatch } from './memory-key-value';

interface MemorySubscription {
    readonly pattern: string;
    readonly handler: (data: Uint8Array) => void;
    readonly connection: MemoryBusConnection;
}

/**
 * A cluster bus inside one process: the brokers of a test share one `MemoryBus`, each through connections of its
 * own (`connect()`), as brokers share one NATS. Messages are delivered in a later turn of the event loop, never in
 * the publisher's call, in the order they were published; buckets behave as JetStream KV buckets
 * (server/cluster/bus/memory-key-value.ts).
 *
 * For tests and for trying a cluster on one machine without nats-server; a deployment's brokers live in separate
 * processes and need NATS.
 */
export class MemoryBus implements ClusterBusProvider {
    protected subscriptions = new Set<MemorySubscription>();
    protected buckets = new Map<string, MemoryBucket>();
    protected queue: { subject: string, data: Uint8Array }[] = [];
    protected flushing = false;

    /** @param maxPayload the largest message, as NATS's `max_payload` (default 1 MiB, nats-server's default) */
    constructor(readonly maxPayload = 1024 * 1024) {
    }

    /** A broker's connection to this bus. */
    connect(name = 'memory'): MemoryBusConnection {
        return new MemoryBusConnection(this, name);
    }

    /** @internal of MemoryBusConnection */
    add(subscription: MemorySubscription): void {
        this.subscriptions.add(subscription);
    }

    /** @internal of MemoryBusConnection */
    remove(subscription: MemorySubscription): void {
        this.subscriptions.delete(subscription);
    }

    /** @internal of MemoryBusConnection */
    publish(subject: string, data: Uint8Array): void {
        // A copy, as a network would make: the publisher may reuse its buffer.
        this.queue.push({ subject, data: data.slice() });
        if (this.flushing) return;
        this.flushing = true;
        setImmediate(() => this.flush());
    }

    /** @internal of MemoryBusConnection */
    bucket(name: string, options: KeyValueOptions): MemoryBucket {
        let bucket = this.buckets.get(name);
        if (!bucket) this.buckets.set(name, bucket = new MemoryBucket(name, options.maxValueSize));
        return bucket;
    }

    protected flush(): void {
        this.flushing = false;
        const messages = this.queue;
        this.queue = [];
        for (const { subject, data } of messages) {
            for (const subscription of [...this.subscriptions]) {
                if (!this.subscriptions.has(subscription) || !subscription.connection.connected || !subjectMatches(subscription.pattern, subject)) continue;
                try {
                    subscription.handler(data);
                } catch (error) {
                    // A subscriber's bug must not keep the message from the others; it still surfaces.
                    setImmediate(() => { throw error; });
                }
            }
        }
    }
}

/** One broker's connection to a MemoryBus. */
export class MemoryBusConnection implements ClusterBus {
    protected isOpen = false;
    protected closed = false;
    protected isCut = false;
    protected readonly eventSubject = new Subject<BusEvent>();
    readonly events = this.eventSubject.asObservable();
    protected own = new Set<MemorySubscription>();
    protected watches = new Set<MemoryWatch>();

    constructor(protected bus: MemoryBus, readonly name: string) {
    }

    get connected(): boolean {
        return this.isOpen && !this.closed && !this.isCut;
    }

    /**
     * Cuts this connection off the bus, as a network partition or a NATS outage would (tests): `disconnected`, then
     * every publish and bucket operation fails, messages for it are lost, and its watches wait.
     */
    cut(): void {
        if (!this.connected) return;
        this.isCut = true;
        for (const watch of this.watches) watch.pause();
        // In a later turn, as a NATS client's status events come: never within the caller's call.
        setImmediate(() => this.eventSubject.next('disconnected'));
    }

    /** Ends a cut: its watches go on where they stopped, then `reconnected`. */
    restore(): void {
        if (!this.isCut || this.closed) return;
        this.isCut = false;
        for (const watch of this.watches) watch.resume();
        setImmediate(() => this.eventSubject.next('reconnected'));
    }

    get maxPayload(): number {
        return this.bus.maxPayload;
    }

    get description(): string {
        return 'the in-memory bus of this process';
    }

    async open(): Promise<void> {
        if (this.closed) throw new Error('This bus connection was closed; connect again.');
        this.isOpen = true;
    }

    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        for (const subscription of this.own) this.bus.remove(subscription);
        this.own.clear();
        for (const watch of this.watches) watch.stop();
        this.watches.clear();
        this.eventSubject.complete();
    }

    publish(subject: string, data: Uint8Array | string): void {
        this.reachable();
        const bytes = bytesOf(data);
        if (bytes.length > this.bus.maxPayload) throw new Error(`A message of ${bytes.length} bytes is larger than the bus's max payload (${this.bus.maxPayload}).`);
        this.bus.publish(subject, bytes);
    }

    subscribe(subject: string, handler: (data: Uint8Array) => void): BusSubscription {
        this.reachable();
        const subscription: MemorySubscription = { pattern: subject, handler, connection: this };
        this.own.add(subscription);
        this.bus.add(subscription);
        return {
            unsubscribe: () => {
                this.own.delete(subscription);
                this.bus.remove(subscription);
            },
        };
    }

    async keyValue(name: string, options: KeyValueOptions): Promise<BusKeyValue> {
        this.reachable();
        return new MemoryKeyValue(this.bus.bucket(name, options), () => this.reachable(), watch => {
            for (const old of this.watches) if (old.done) this.watches.delete(old);
            this.watches.add(watch);
        });
    }

    protected reachable(): void {
        if (!this.connected) throw new Error(`Bus connection ${this.name} is not open.`);
    }
}
