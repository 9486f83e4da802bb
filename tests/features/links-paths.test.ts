import { rpc } from '@deepkit/rpc';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { firstValueFrom, Observable } from 'rxjs';
import { filter, take, toArray } from 'rxjs/operators';
import { Peer } from '../../peer';
import { directLinks, LinkEvent } from '../../peer/features/links';
import { BrokerStats } from '../../server/stats';
import { Resources, wentOffline } from '../helpers';

jest.setTimeout(60_000);

const resources = new Resources();
afterEach(() => resources.closeAll());

/** Numbers from `from` on, one each millisecond: item n of a stream started at p is p + n, so it can resume. */
@rpc.controller('test/counter')
class Counter {
    @rpc.action()
    count(from: number = 0): Observable<number> {
        return new Observable(subscriber => {
            let n = from;
            const timer = setInterval(() => subscriber.next(n++), 1);
            return () => clearInterval(timer);
        });
    }
}

interface CounterApi {
    count(from?: number): Observable<number>;
}

/** What the counter's contract declares: `count` restarts from its first argument. */
const counterResumable = { count: 0 };

type LinkedPeer = Peer<{ links: ReturnType<typeof directLinks> }>;

/** `storage`: a file, for a peer that comes back with the same key (a relay holds only what is sealed for it). */
async function linkedPeer(url: string, id: string, auto = false, storage?: string): Promise<LinkedPeer> {
    const peer = await Peer.connect({
        url, id, storage, relay: { trustedRelays: ['carol'] }, features: { links: directLinks({ auto, allow: () => true }) }, expose: [[Counter, 'test/counter']],
    });
    return resources.add(peer, p => p.close());
}

function linkEvent(peer: LinkedPeer, kind: LinkEvent['kind'], peerId: string): Promise<LinkEvent> {
    return firstValueFrom(peer.features.links.changes$.pipe(filter(event => event.kind === kind && event.peerId === peerId)));
}

describe('paths across a direct link', () => {
    it('a relayed conversation becomes direct on its own once the recipient is back and the link comes up', async () => {
        const broker = await resources.broker();
        resources.add(await Peer.connect({ url: broker.url, id: 'carol' }), p => p.close());
        const alice = await linkedPeer(broker.url, 'alice', true);
        const bobGone = wentOffline(alice, 'bob');
        const bobStorage = join(mkdtempSync(join(tmpdir(), 'switchboard-links-paths-')), 'bob.sqlite');
        resources.add(bobStorage, file => rmSync(dirname(file), { recursive: true, force: true }));
        await (await linkedPeer(broker.url, 'bob', true, bobStorage)).close();
        await bobGone;
        const paths = firstValueFrom(alice.chat.paths$.pipe(take(3), toArray()));

        const relayed = await alice.chat.send('bob', 'while you were away');
        expect(relayed).toMatchObject({ status: 'queued', path: 'relay' });
        const confirmed = firstValueFrom(alice.chat.updates$.pipe(filter(entry => entry.id === relayed.id && entry.status === 'delivered')));
        const bob = await linkedPeer(broker.url, 'bob', true, bobStorage);
        await confirmed;

        // The first message after the relay goes through the broker, and the call opens a link in the background.
        const opened = linkEvent(alice, 'open', 'bob');
        expect(await alice.chat.send('bob', 'you are back')).toMatchObject({ status: 'delivered', path: 'broker' });
        await opened;
        expect(await alice.chat.send('bob', 'and now we are linked')).toMatchObject({ status: 'delivered', path: 'direct' });

        expect(await paths).toEqual([{ peerId: 'bob', path: 'relay' }, { peerId: 'bob', path: 'broker' }, { peerId: 'bob', path: 'direct' }]);
        const history = await bob.chat.history('alice');
        expect(history.map(entry => [entry.text, entry.path])).toEqual([
            ['while you were away', 'relay'], ['you are back', 'broker'], ['and now we are linked', 'direct'],
        ]);
    });

    it('a resumable stream moves from a dropped link to the broker with every item once, in order', async () => {
        const broker = await resources.broker();
        const stats = broker.app.get(BrokerStats);
        const alice = await linkedPeer(broker.url, 'alice');
        await linkedPeer(broker.url, 'bob');
        await alice.features.links.open('bob');
        const counter = alice.to('bob').controller<CounterApi>('test/counter', { resumable: counterResumable });

        const routedBefore = stats.framesRouted;
        const stream = await counter.count(5);
        const items: number[] = [];
        let ended: unknown;
        const reached = new Promise<void>(resolve => stream.subscribe({
            next: n => {
                items.push(n);
                if (n === 600) resolve();
            },
            error: error => ended = error,
            complete: () => ended = 'completed',
        }));
        await firstValueFrom(stream.pipe(filter(n => n >= 100)));
        expect(stats.framesRouted).toBe(routedBefore);

        alice.features.links.close('bob');
        await reached;
        expect(ended).toBeUndefined();
        // The rest came through the broker, from where the link stopped: no gap, no duplicate, no reordering.
        expect(stats.framesRouted).toBeGreaterThan(routedBefore);
        expect(items.slice(0, 596)).toEqual(Array.from({ length: 596 }, (_, i) => 5 + i));
    });
});
