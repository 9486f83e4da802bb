import { JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { Kvm, KvWatchInclude } from '@nats-io/kv';
import { Observable } from 'rxjs';
import { NatsLink } from '../nats-link';
import { BusEntry, BusEvent, BusKeyValue, BusSubscription, BusWatch, ClusterBus, KeyConflict, KeyValueOptions, WatchOptions } from './cluster-bus';

/**
 * The cluster bus on NATS: subjects are core NATS, buckets are JetStream KV buckets (history 1). The link
 * (server/cluster/nats-link.ts) reconnects forever and says when it is down or back.
 */
export class NatsBus implements ClusterBus {
    readonly link: NatsLink;

    /** @param servers `nats://host:port` URLs, comma-separated */
    constructor(servers: string, name: string, reconnectWaitMs: number) {
        this.link = new NatsLink(servers, name, reconnectWaitMs);
    }

    get connected(): boolean {
        return this.link.connected;
    }

    get events(): Observable<BusEvent> {
        return this.link.events;
    }

    get maxPayload(): number {
        return this.link.maxPayload;
    }

    get description(): string {
        return `NATS ${this.link.redactedUrl}`;
    }

    open(): Promise<void> {
        return this.link.open();
    }

    close(): Promise<void> {
        return this.link.close();
    }

    publish(subject: string, data: Uint8Array | string): void {
        // The client would buffer it while disconnected and deliver it late, after the callers gave up.
        if (!this.link.connected) throw new Error(`Not connected to NATS: nothing is published on ${subject}.`);
        this.link.nc.publish(subject, data);
    }

    subscribe(subject: string, handler: (data: Uint8Array) => void): BusSubscription {
        const subscription = this.link.nc.subscribe(subject, { callback: (error, message) => { if (!error) handler(message.data); } });
        return { unsubscribe: () => subscription.unsubscribe() };
    }

    async keyValue(name: string, options: KeyValueOptions): Promise<BusKeyValue> {
        return new NatsKeyValue(await new Kvm(this.link.nc).create(name, { history: 1, maxValueSize: options.maxValueSize }));
    }
}

/** JetStream's answers to a compare-and-set that lost: wrong last sequence (10071), or unknown (10164). */
function conflictOf(error: unknown): unknown {
    if (error instanceof JetStreamApiError && (error.code === 10071 || error.code === 10164)) return new KeyConflict(error.message);
    return error;
}

function entryOf(entry: KvEntry): BusEntry {
    return { key: entry.key, value: entry.value, revision: entry.revision, operation: entry.operation === 'PUT' ? 'PUT' : 'DEL', created: entry.created };
}

class NatsKeyValue implements BusKeyValue {
    constructor(protected kv: KV) {
    }

    async get(key: string): Promise<BusEntry | undefined> {
        const entry = await this.kv.get(key);
        return entry ? entryOf(entry) : undefined;
    }

    put(key: string, value: Uint8Array | string): Promise<number> {
        return this.kv.put(key, value);
    }

    create(key: string, value: Uint8Array | string): Promise<number> {
        return this.kv.create(key, value).catch(error => Promise.reject(conflictOf(error)));
    }

    update(key: string, value: Uint8Array | string, revision: number): Promise<number> {
        return this.kv.update(key, value, revision).catch(error => Promise.reject(conflictOf(error)));
    }

    async delete(key: string, revision?: number): Promise<void> {
        await this.kv.delete(key, revision === undefined ? undefined : { previousSeq: revision }).catch(error => Promise.reject(conflictOf(error)));
    }

    async keys(filter = '>'): Promise<string[]> {
        const keys: string[] = [];
        for await (const key of await this.kv.keys(filter)) keys.push(key);
        return keys;
    }

    async watch(options: WatchOptions = {}): Promise<BusWatch> {
        const watcher = await this.kv.watch({ key: options.key ?? '>', include: options.updatesOnly ? KvWatchInclude.UpdatesOnly : KvWatchInclude.LastValue });
        return {
            stop: () => void watcher.stop(),
            async *[Symbol.asyncIterator]() {
                for await (const entry of watcher) yield entryOf(entry);
            },
        };
    }
}
