import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { Disconnected } from '../../shared';
import { Peer } from '../../peer';
import { directLinks, LinkEvent } from '../../peer/features/links';
import { BrokerStats } from '../../server/stats';
import { EchoController, heldCalls, Resources } from '../helpers';

jest.setTimeout(60_000);

const resources = new Resources();
afterEach(() => resources.closeAll());

type LinkedPeer = Peer<{ links: ReturnType<typeof directLinks> }>;

async function linkedPeer(url: string, id: string, options: Parameters<typeof directLinks>[0] = {}): Promise<LinkedPeer> {
    const peer = await Peer.connect({ url, id, features: { links: directLinks(options) }, expose: [[EchoController, EchoController.path]] });
    return resources.add(peer, p => p.close());
}

function linkEvent(peer: LinkedPeer, kind: LinkEvent['kind'], peerId: string): Promise<LinkEvent> {
    return firstValueFrom(peer.features.links.changes$.pipe(filter(event => event.kind === kind && event.peerId === peerId)));
}

function echo(from: LinkedPeer, to: string) {
    return from.to(to).controller<EchoController>(EchoController.path, { idempotent: ['echo', 'whoCalls'] });
}

describe('direct links', () => {
    it('opens after a call through the broker, and then carries calls: the broker routes nothing while 1,000 calls are made', async () => {
        const broker = await resources.broker();
        const stats = broker.app.get(BrokerStats);
        const alice = await linkedPeer(broker.url, 'alice');
        const bob = await linkedPeer(broker.url, 'bob');
        const opened = Promise.all([linkEvent(alice, 'open', 'bob'), linkEvent(bob, 'open', 'alice')]);

        expect(await echo(alice, 'bob').echo('via the broker')).toBe('via the broker');
        await opened;
        expect(alice.features.links.list()).toEqual([expect.objectContaining({ peerId: 'bob', state: 'open', role: 'offerer' })]);
        expect(bob.features.links.list()).toEqual([expect.objectContaining({ peerId: 'alice', state: 'open', role: 'answerer' })]);

        const routedBefore = stats.framesRouted;
        const answers = await Promise.all(Array.from({ length: 1000 }, (_, i) => echo(alice, 'bob').echo(`call ${i}`)));
        expect(answers).toEqual(Array.from({ length: 1000 }, (_, i) => `call ${i}`));
        // Either way: bob calls alice over the same link, and sees her as the link proved her.
        expect(await echo(bob, 'alice').whoCalls()).toEqual({ peerId: 'bob', session: '' });
        expect(await echo(alice, 'bob').whoCalls()).toEqual({ peerId: 'alice', session: '' });
        expect(stats.framesRouted).toBe(routedBefore);
        expect(alice.features.links.list()[0].callsSent).toBeGreaterThanOrEqual(1001);
    });

    it('checks arguments on a link as through the broker', async () => {
        const broker = await resources.broker();
        const alice = await linkedPeer(broker.url, 'alice');
        const bob = await linkedPeer(broker.url, 'bob');
        const opened = linkEvent(alice, 'open', 'bob');
        await echo(alice, 'bob').echo('hello');
        await opened;
        await expect(echo(alice, 'bob').echo('')).rejects.toThrow(/echo|text|length/i);
        expect(bob.features.links.list()[0].callsServed).toBeGreaterThanOrEqual(1);
    });

    it('a link closed mid-use: the call in flight fails with Disconnected, later calls go through the broker', async () => {
        const broker = await resources.broker();
        const stats = broker.app.get(BrokerStats);
        const alice = await linkedPeer(broker.url, 'alice', { auto: false });
        const bob = await linkedPeer(broker.url, 'bob', { auto: false });
        await echo(alice, 'bob').echo('contact');
        await alice.features.links.open('bob');

        const held = echo(alice, 'bob').hold();
        await heldCalls(1);
        const closed = linkEvent(alice, 'closed', 'bob');
        bob.features.links.close('alice');
        await expect(held).rejects.toBeInstanceOf(Disconnected);
        await closed;
        expect(alice.features.links.list()).toEqual([]);
        const routedBefore = stats.framesRouted;
        expect(await echo(alice, 'bob').echo('through the broker again')).toBe('through the broker again');
        expect(stats.framesRouted).toBeGreaterThan(routedBefore);
    });
});
