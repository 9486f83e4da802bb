import { MemoryBus } from '../../server';
import { describeClusterBusCompliance } from '../../testing/cluster-bus-compliance';

describeClusterBusCompliance('memory', {
    setup: async () => {
        const bus = new MemoryBus();
        return [bus.connect('one'), bus.connect('two')];
    },
});

describe('MemoryBus: a connection cut off and restored (what tests use for a partition)', () => {
    it('says disconnected, refuses publishes and bucket operations, misses messages; restored, its watch goes on in order', async () => {
        const bus = new MemoryBus();
        const [one, two] = [bus.connect('one'), bus.connect('two')];
        await one.open();
        await two.open();
        const events: string[] = [];
        two.events.subscribe(event => events.push(event));
        const heard: string[] = [];
        two.subscribe('s.x', data => heard.push(new TextDecoder().decode(data)));
        const kv = await one.keyValue('b', { maxValueSize: 64 });
        const watch = (await (await two.keyValue('b', { maxValueSize: 64 })).watch())[Symbol.asyncIterator]();

        two.cut();
        expect(two.connected).toBe(false);
        expect(events).toEqual([]); // never within the caller's call
        expect(() => two.publish('s.x', 'from a cut connection')).toThrow();
        await expect((await one.keyValue('b', { maxValueSize: 64 })).get('k')).resolves.toBeUndefined();
        await expect(two.keyValue('b', { maxValueSize: 64 })).rejects.toThrow();
        one.publish('s.x', 'lost');
        await kv.put('k', 'one');
        await kv.put('k', 'two');
        expect(events).toEqual(['disconnected']);

        two.restore();
        const values = [await watch.next(), await watch.next()].map(result => new TextDecoder().decode(result.value!.value));
        expect(values).toEqual(['one', 'two']);
        one.publish('s.x', 'after');
        await new Promise<void>(resolve => two.subscribe('s.x', () => resolve()));
        expect(heard).toEqual(['after']);
        expect(events).toEqual(['disconnected', 'reconnected']);
        await one.close();
        await two.close();
    });
});
