import { rpc } from '@deepkit/rpc';
import { firstValueFrom, Observable } from 'rxjs';
import { filter } from 'rxjs/operators';
import { Disconnected } from '../../shared';
import { Peer } from '../../peer';
import { directLinks, LinkEvent } from '../../peer/features/links';
import { BrokerStats } from '../../server/stats';
import { Resources } from '../helpers';

jest.setTimeout(60_000);

const resources = new Resources();
afterEach(() => resources.closeAll());

/** An endless stream of numbers, one each time the previous one was sent. */
@rpc.controller('test/link-ticker')
class LinkTicker {
    @rpc.action()
    ticks(): Observable<number> {
        return new Observable(subscriber => {
            let n = 0;
            const timer = setInterval(() => subscriber.next(n++), 5);
            return () => clearInterval(timer);
        });
    }
}

interface LinkTickerApi {
    ticks(): Observable<number>;
}

type LinkedPeer = Peer<{ links: ReturnType<typeof directLinks> }>;

async function linkedPeer(url: string, id: string): Promise<LinkedPeer> {
    const peer = await Peer.connect({ url, id, features: { links: directLinks({ auto: false, allow: () => true }) }, expose: [[LinkTicker, 'test/link-ticker']] });
    return resources.add(peer, p => p.close());
}

function linkEvent(peer: LinkedPeer, kind: LinkEvent['kind'], peerId: string): Promise<LinkEvent> {
    return firstValueFrom(peer.features.links.changes$.pipe(filter(event => event.kind === kind && event.peerId === peerId)));
}

describe('a stream over a direct link', () => {
    it('ends with Disconnected naming the link when the link closes mid-stream (not a silent completion); a new subscription goes through the broker', async () => {
        const broker = await resources.broker();
        const stats = broker.app.get(BrokerStats);
        const alice = await linkedPeer(broker.url, 'alice');
        await linkedPeer(broker.url, 'bob');
        await alice.features.links.open('bob');
        const ticker = alice.to('bob').controller<LinkTickerApi>('test/link-ticker');

        const routedBefore = stats.framesRouted;
        const stream = await ticker.ticks();
        const items: number[] = [];
        const ended = new Promise<unknown>(resolve => stream.subscribe({ next: n => items.push(n), error: resolve, complete: () => resolve('completed') }));
        await firstValueFrom(stream.pipe(filter(n => n >= 3)));
        expect(stats.framesRouted).toBe(routedBefore);

        const closed = linkEvent(alice, 'closed', 'bob');
        alice.features.links.close('bob');
        const end = await ended;
        expect(end).toBeInstanceOf(Disconnected);
        expect((end as Error).message).toMatch(/direct link to "bob" closed.*subscribe again/i);
        await closed;
        // What arrived before the end arrived once and in order.
        expect(items).toEqual(items.map((_, i) => i));

        const again = await ticker.ticks();
        expect(await firstValueFrom(again.pipe(filter(n => n >= 2)))).toBe(2);
        expect(stats.framesRouted).toBeGreaterThan(routedBefore);
    });
});
