import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { WebStorageAdapter } from '../../peer/storage/web-storage-adapter';
import { startSwitchboard } from '../../testing/test-kit';

/** The Web Storage API over a Map: what a browser's sessionStorage is, for a peer running in Node. */
class MapStorage implements Storage {
    protected items = new Map<string, string>();
    get length() {
        return this.items.size;
    }
    clear() {
        this.items.clear();
    }
    getItem(key: string) {
        return this.items.get(key) ?? null;
    }
    key(index: number) {
        return [...this.items.keys()][index] ?? null;
    }
    removeItem(key: string) {
        this.items.delete(key);
    }
    setItem(key: string, value: string) {
        this.items.set(key, value);
    }
}

describe('WebStorageAdapter (browser peer storage)', () => {
    it('a peer restarted on the same Web Storage keeps its chat history and its outbox', async () => {
        const storage = new MapStorage();
        await using kit = await startSwitchboard({ peers: ['bob'] });
        const first = await kit.addPeer({ id: 'alice', storage: new WebStorageAdapter('tab', storage) });
        await first.chat.send('bob', 'delivered before the reload');
        await kit.peer('bob').close();
        expect((await first.chat.send('bob', 'queued for bob')).status).toBe('queued');
        await first.close();
        expect(storage.length).toBeGreaterThan(0);

        const again = await kit.addPeer({ id: 'alice', storage: new WebStorageAdapter('tab', storage) });
        expect((await again.chat.history('bob')).map(e => [e.text, e.status])).toEqual([
            ['delivered before the reload', 'delivered'],
            ['queued for bob', 'queued'],
        ]);
        // The outbox came back too: bob gets the queued message when he is online again.
        let received!: Promise<unknown>;
        await kit.addPeer({ id: 'bob' }, bob => {
            received = firstValueFrom(bob.chat.updates$.pipe(filter(e => e.direction === 'in' && e.text === 'queued for bob')));
        });
        await received;
    });
});
