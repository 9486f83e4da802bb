import { randomUUID } from 'crypto';
import { BusEntry, BusWatch, ClusterBus, KeyConflict } from '@switchboard/broker';

export interface ClusterBusHarness {
    /** Two connections to one fresh bus (two brokers' view of it), not opened yet. */
    setup(): Promise<[ClusterBus, ClusterBus]>;
    teardown?(): Promise<void>;
}

const decoder = new TextDecoder();
const text = (data: Uint8Array) => decoder.decode(data);

/** Resolves with the next `count` entries of `watch`. */
async function next(iterator: AsyncIterator<BusEntry>, count: number): Promise<BusEntry[]> {
    const entries: BusEntry[] = [];
    while (entries.length < count) {
        const result = await iterator.next();
        if (result.done) throw new Error(`The watch ended after ${entries.length} of ${count} entries`);
        entries.push(result.value);
    }
    return entries;
}

/** Collects what `subject` brings on `bus` until `count` messages came. */
function collect(bus: ClusterBus, subject: string, count: number): { messages: string[], done: Promise<string[]>, unsubscribe(): void } {
    const messages: string[] = [];
    let resolve!: (messages: string[]) => void;
    const done = new Promise<string[]>(r => resolve = r);
    const subscription = bus.subscribe(subject, data => {
        messages.push(text(data));
        if (messages.length === count) resolve(messages);
    });
    return { messages, done, unsubscribe: () => subscription.unsubscribe() };
}

/**
 * What every cluster bus must do (server/cluster/bus/cluster-bus.ts): the NATS bus and the in-memory bus run it, so
 * the cluster tests that run on the in-memory bus say something about NATS too.
 * `describeClusterBusCompliance('memory', { setup: async () => { const bus = new MemoryBus(); return [bus.connect(), bus.connect()]; } })`
 */
export function describeClusterBusCompliance(name: string, harness: ClusterBusHarness): void {
    describe(`ClusterBus compliance: ${name}`, () => {
        let one: ClusterBus;
        let two: ClusterBus;
        /** Subjects and buckets of this test only: a shared server keeps other tests' buckets. */
        let scope: string;
        const watches: BusWatch[] = [];

        beforeEach(async () => {
            [one, two] = await harness.setup();
            await one.open();
            await two.open();
            scope = `compliance_${randomUUID().slice(0, 8)}`;
        });

        afterEach(async () => {
            for (const watch of watches.splice(0)) watch.stop();
            await one.close();
            await two.close();
            await harness.teardown?.();
        });

        async function watch(bus: ClusterBus, bucket: string): Promise<AsyncIterator<BusEntry>> {
            const watching = await (await bus.keyValue(bucket, { maxValueSize: 1024 })).watch();
            watches.push(watching);
            return watching[Symbol.asyncIterator]();
        }

        it('a message reaches every subscriber of its subject, on every connection, in the order published, and never within publish', async () => {
            const subject = `${scope}.control`;
            const mine = collect(one, subject, 100);
            const theirs = collect(two, subject, 100);
            const other = collect(two, `${scope}.other`, 1);
            await subscribed(one, scope);
            await subscribed(two, scope);
            for (let i = 0; i < 100; i++) one.publish(subject, `m${i}`);
            expect(mine.messages).toEqual([]);
            const expected = [...Array(100).keys()].map(i => `m${i}`);
            expect(await mine.done).toEqual(expected);
            expect(await theirs.done).toEqual(expected);
            expect(other.messages).toEqual([]);
        });

        it('a subscription ending in > hears every subject under it; an unsubscribed handler hears nothing more', async () => {
            const all = collect(two, `${scope}.audit.>`, 2);
            const gone = collect(two, `${scope}.audit.b1`, 1);
            gone.unsubscribe();
            await subscribed(two, scope);
            one.publish(`${scope}.audit.b1`, 'one');
            one.publish(`${scope}.audit.b2`, 'two');
            expect(await all.done).toEqual(['one', 'two']);
            expect(gone.messages).toEqual([]);
        });

        it('bytes arrive as published; a message larger than maxPayload is refused at once', async () => {
            const subject = `${scope}.inbox`;
            const received = new Promise<Uint8Array>(resolve => two.subscribe(subject, resolve));
            await subscribed(two, scope);
            const bytes = new Uint8Array([0, 1, 2, 255]);
            one.publish(subject, bytes);
            expect([...await received]).toEqual([0, 1, 2, 255]);
            expect(() => one.publish(subject, new Uint8Array(one.maxPayload + 1))).toThrow();
        });

        it('a bucket is shared by every connection; each write gets the next revision of the bucket, across keys', async () => {
            const a = await one.keyValue(`${scope}_kv`, { maxValueSize: 1024 });
            const b = await two.keyValue(`${scope}_kv`, { maxValueSize: 1024 });
            expect(await a.get('p.x')).toBeUndefined();
            const first = await a.put('p.x', 'one');
            const second = await b.put('p.y', 'two');
            expect(second).toBeGreaterThan(first);
            const read = (await b.get('p.x'))!;
            expect({ key: read.key, value: text(read.value), revision: read.revision, operation: read.operation }).toEqual({ key: 'p.x', value: 'one', revision: first, operation: 'PUT' });
            expect(read.created).toBeInstanceOf(Date);
            const other = await one.keyValue(`${scope}_other`, { maxValueSize: 1024 });
            expect(await other.get('p.x')).toBeUndefined();
        });

        it('create: of racing creates exactly one wins, the others get KeyConflict; a deleted key may be created again', async () => {
            const a = await one.keyValue(`${scope}_kv`, { maxValueSize: 1024 });
            const b = await two.keyValue(`${scope}_kv`, { maxValueSize: 1024 });
            const outcomes = await Promise.allSettled([...Array(10).keys()].map(i => (i % 2 ? a : b).create('p.race', `c${i}`)));
            expect(outcomes.filter(outcome => outcome.status === 'fulfilled')).toHaveLength(1);
            for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(KeyConflict);
            const winner = (await a.get('p.race'))!;
            await b.delete('p.race', winner.revision);
            const deleted = (await a.get('p.race'))!;
            expect(deleted.operation).toBe('DEL');
            expect(deleted.revision).toBeGreaterThan(winner.revision);
            expect(await a.create('p.race', 'again')).toBeGreaterThan(deleted.revision);
        });

        it('update and delete at a revision are compare-and-set: only at the key\'s latest revision', async () => {
            const kv = await one.keyValue(`${scope}_kv`, { maxValueSize: 1024 });
            const first = await kv.put('p.cas', 'one');
            const second = await kv.update('p.cas', 'two', first);
            await expect(kv.update('p.cas', 'stale', first)).rejects.toBeInstanceOf(KeyConflict);
            await expect(kv.delete('p.cas', first)).rejects.toBeInstanceOf(KeyConflict);
            expect(text((await kv.get('p.cas'))!.value)).toBe('two');
            await kv.delete('p.cas', second);
            await expect(kv.update('p.cas', 'late', second)).rejects.toBeInstanceOf(KeyConflict);
            await kv.delete('p.cas'); // without a revision: whatever is there
            expect((await kv.get('p.cas'))!.operation).toBe('DEL');
        });

        it('a watch shows each key\'s latest entry (deletions too) in revision order, then every write in order, on every connection', async () => {
            const kv = await one.keyValue(`${scope}_kv`, { maxValueSize: 1024 });
            await kv.put('p.a', 'a1');
            await kv.put('p.b', 'b1');
            await kv.put('p.a', 'a2');
            await kv.delete('p.b');
            const watching = await watch(two, `${scope}_kv`);
            const snapshot = await next(watching, 2);
            expect(snapshot.map(entry => [entry.key, entry.operation, entry.operation === 'PUT' ? text(entry.value) : ''])).toEqual([['p.a', 'PUT', 'a2'], ['p.b', 'DEL', '']]);
            expect(snapshot[1].revision).toBeGreaterThan(snapshot[0].revision);
            const revisions: number[] = [];
            for (let i = 0; i < 20; i++) revisions.push(await kv.put(`p.k${i % 3}`, `v${i}`));
            const later = await next(watching, 20);
            expect(later.map(entry => entry.revision)).toEqual(revisions);
            expect(later.map(entry => text(entry.value))).toEqual([...Array(20).keys()].map(i => `v${i}`));
        });

        it('keys lists the live keys matching a filter; a watch may take one filter, and only the writes after it began', async () => {
            const kv = await one.keyValue(`${scope}_kv`, { maxValueSize: 1024 });
            await kv.put('h.a', 'a');
            await kv.put('h.b', 'b');
            await kv.put('n.a', 'name');
            await kv.delete('h.b');
            expect((await kv.keys('h.>')).sort()).toEqual(['h.a']);
            expect((await kv.keys()).sort()).toEqual(['h.a', 'n.a']);
            const watching = await (await two.keyValue(`${scope}_kv`, { maxValueSize: 1024 })).watch({ key: 'h.>', updatesOnly: true });
            watches.push(watching);
            await kv.put('n.b', 'not under h');
            await kv.put('h.c', 'c');
            await kv.delete('h.a');
            const later = await next(watching[Symbol.asyncIterator](), 2);
            expect(later.map(entry => [entry.key, entry.operation])).toEqual([['h.c', 'PUT'], ['h.a', 'DEL']]);
        });

        it('closing a connection ends its watches, and its subscriptions hear nothing more', async () => {
            const kv = await one.keyValue(`${scope}_kv`, { maxValueSize: 1024 });
            const watching = await (await two.keyValue(`${scope}_kv`, { maxValueSize: 1024 })).watch();
            watches.push(watching);
            const heard: string[] = [];
            two.subscribe(`${scope}.after`, data => heard.push(text(data)));
            const ended = watching[Symbol.asyncIterator]().next();
            await two.close();
            expect((await ended).done).toBe(true);
            await kv.put('p.late', 'late');
            const control = collect(one, `${scope}.after`, 1);
            await subscribed(one, scope);
            one.publish(`${scope}.after`, 'after close');
            await control.done;
            expect(heard).toEqual([]);
        });

        it('a stopped watch ends; stop and close may be called twice', async () => {
            const kv = await one.keyValue(`${scope}_kv`, { maxValueSize: 1024 });
            const watching = await kv.watch();
            const iterator = watching[Symbol.asyncIterator]();
            const ended = iterator.next();
            watching.stop();
            watching.stop();
            expect((await ended).done).toBe(true);
            expect(one.connected).toBe(true);
            await one.close();
            await one.close();
            expect(one.connected).toBe(false);
            expect(() => one.publish(`${scope}.x`, 'late')).toThrow();
        });
    });
}

/**
 * Resolves once `to` has had an answer from the bus: the subscriptions it made before are in place (a NATS server
 * handles a connection's messages in order), so what another connection publishes next reaches them.
 */
async function subscribed(to: ClusterBus, scope: string): Promise<void> {
    await (await to.keyValue(`${scope}_sync`, { maxValueSize: 64 })).get('ready');
}
