import { BusEntry, BusKeyValue, BusWatch, bytesOf, KeyConflict, subjectMatches, WatchOptions } from './cluster-bus';

const EMPTY = new Uint8Array(0);

/**
 * One bucket of the in-memory bus, with JetStream KV's semantics as the cluster relies on them: one revision counter
 * for the whole bucket, the latest entry per key only (history 1), a delete that leaves a `DEL` entry with its own
 * revision, compare-and-set on a key's latest revision, and watches that show every key's latest entry in revision
 * order and then each write, always after the writer's call returned.
 */
export class MemoryBucket {
    protected entries = new Map<string, BusEntry>();
    protected revision = 0;
    protected watches = new Set<MemoryWatch>();

    constructor(readonly name: string, readonly maxValueSize: number) {
    }

    get(key: string): BusEntry | undefined {
        return this.entries.get(key);
    }

    /** @param expected undefined: any; 0: absent or deleted; else the key's latest revision */
    write(key: string, value: Uint8Array, operation: 'PUT' | 'DEL', expected?: number): number {
        validKey(key);
        if (value.length > this.maxValueSize) throw new Error(`A value of ${value.length} bytes is larger than bucket ${this.name}'s maxValueSize (${this.maxValueSize}).`);
        const current = this.entries.get(key);
        if (expected !== undefined) {
            const absent = !current || current.operation === 'DEL';
            const matches = expected === 0 ? absent : current?.revision === expected;
            if (!matches) throw new KeyConflict(`wrong last sequence: ${current?.revision ?? 0} (key ${key} of bucket ${this.name})`);
        }
        const entry: BusEntry = { key, value, revision: ++this.revision, operation, created: new Date };
        this.entries.set(key, entry);
        for (const watch of this.watches) watch.push(entry);
        return entry.revision;
    }

    keys(filter: string): string[] {
        return [...this.entries.values()].filter(entry => entry.operation === 'PUT' && subjectMatches(filter, entry.key)).map(entry => entry.key);
    }

    watch(options: WatchOptions): MemoryWatch {
        const filter = options.key ?? '>';
        const watch = new MemoryWatch(filter, () => this.watches.delete(watch));
        if (!options.updatesOnly) {
            for (const entry of [...this.entries.values()].sort((a, b) => a.revision - b.revision)) watch.push(entry);
        }
        this.watches.add(watch);
        return watch;
    }
}

/** A broker's handle on a bucket: refuses everything while its connection to the bus is down. */
export class MemoryKeyValue implements BusKeyValue {
    /** @param opened each watch made here, for the connection to pause, resume and end (as a NATS connection's) */
    constructor(protected bucket: MemoryBucket, protected reachable: () => void, protected opened: (watch: MemoryWatch) => void) {
    }

    async get(key: string): Promise<BusEntry | undefined> {
        await this.turn();
        return this.bucket.get(key);
    }

    async put(key: string, value: Uint8Array | string): Promise<number> {
        await this.turn();
        return this.bucket.write(key, bytesOf(value), 'PUT');
    }

    async create(key: string, value: Uint8Array | string): Promise<number> {
        await this.turn();
        return this.bucket.write(key, bytesOf(value), 'PUT', 0);
    }

    async update(key: string, value: Uint8Array | string, revision: number): Promise<number> {
        if (revision <= 0) throw new Error('An update needs the revision it replaces (> 0).');
        await this.turn();
        return this.bucket.write(key, bytesOf(value), 'PUT', revision);
    }

    async delete(key: string, revision?: number): Promise<void> {
        await this.turn();
        // As the NATS client does, a revision of 0 sets no condition.
        this.bucket.write(key, EMPTY, 'DEL', revision || undefined);
    }

    async keys(filter = '>'): Promise<string[]> {
        await this.turn();
        return this.bucket.keys(filter);
    }

    async watch(options: WatchOptions = {}): Promise<BusWatch> {
        await this.turn();
        const watch = this.bucket.watch(options);
        this.opened(watch);
        return watch;
    }

    /** Every operation answers in a later turn of the event loop, as a server would; and only while connected. */
    protected async turn(): Promise<void> {
        this.reachable();
        await new Promise<void>(resolve => setImmediate(resolve));
        this.reachable();
    }
}

/** Keys are NATS subject tokens: no empty token, no wildcard, no space. */
function validKey(key: string): void {
    if (!/^[-/=.\w]+$/.test(key) || key.startsWith('.') || key.endsWith('.') || key.includes('..')) throw new Error(`Invalid key "${key}".`);
}

/** A watch's queue: entries wait here until the reader takes them, so a writer never runs the reader's code. */
export class MemoryWatch implements BusWatch {
    protected queue: BusEntry[] = [];
    protected waiting?: (result: IteratorResult<BusEntry>) => void;
    protected stopped = false;
    /** Its connection is cut off: entries wait, and come in order once it is back (a consumer resuming). */
    protected paused = false;

    constructor(protected filter: string, protected ended: () => void) {
    }

    push(entry: BusEntry): void {
        if (this.stopped || !subjectMatches(this.filter, entry.key)) return;
        if (!this.waiting || this.paused) {
            this.queue.push(entry);
            return;
        }
        const resolve = this.waiting;
        this.waiting = undefined;
        resolve({ value: entry, done: false });
    }

    get done(): boolean {
        return this.stopped;
    }

    pause(): void {
        this.paused = true;
    }

    resume(): void {
        this.paused = false;
        const entry = this.waiting && this.queue.shift();
        if (!entry) return;
        const resolve = this.waiting!;
        this.waiting = undefined;
        resolve({ value: entry, done: false });
    }

    stop(): void {
        if (this.stopped) return;
        this.stopped = true;
        this.queue = [];
        this.ended();
        this.waiting?.({ value: undefined, done: true });
        this.waiting = undefined;
    }

    [Symbol.asyncIterator](): AsyncIterator<BusEntry> {
        return {
            next: () => {
                if (this.stopped) return Promise.resolve({ value: undefined, done: true });
                const entry = this.paused ? undefined : this.queue.shift();
                if (entry) return Promise.resolve({ value: entry, done: false });
                return new Promise(resolve => this.waiting = resolve);
            },
            return: async () => {
                this.stop();
                return { value: undefined, done: true };
            },
        };
    }
}
