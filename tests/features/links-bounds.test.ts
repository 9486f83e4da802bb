import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { RateLimited } from '../../shared';
import { Peer } from '../../peer';
import { directLinks, DirectLinksOptions, LinkEvent } from '../../peer/features/links';
import { BrokerStats } from '../../server/stats';
import { EchoController, heldCalls, Resources } from '../helpers';

jest.setTimeout(60_000);

const resources = new Resources();
afterEach(() => resources.closeAll());

async function linkedPeer(url: string, id: string, options: Partial<DirectLinksOptions> = {}) {
    const peer = await Peer.connect({ url, id, features: { links: directLinks(options) }, expose: [[EchoController, EchoController.path]] });
    return resources.add(peer, p => p.close());
}

type LinkedPeer = Awaited<ReturnType<typeof linkedPeer>>;

function linkEvent(peer: LinkedPeer, kind: LinkEvent['kind'], peerId: string): Promise<LinkEvent> {
    return firstValueFrom(peer.features.links.changes$.pipe(filter(event => event.kind === kind && event.peerId === peerId)));
}

async function linked(from: LinkedPeer, to: LinkedPeer): Promise<void> {
    const answered = linkEvent(to, 'open', from.id);
    await from.features.links.open(to.id);
    await answered;
}

describe('direct links: bounds', () => {
    it('at most maxLinks: a new link closes the least recently used one', async () => {
        const broker = await resources.broker();
        const alice = await linkedPeer(broker.url, 'alice', { maxLinks: 2, allow: () => true });
        const peers = await Promise.all(['bob', 'carol', 'dave'].map(id => linkedPeer(broker.url, id, { allow: () => true })));
        await linked(alice, peers[0]);
        await linked(alice, peers[1]);
        // Bob is used after carol: carol is the least recently used when dave comes.
        await alice.to('bob').controller<EchoController>(EchoController.path).echo('still here');
        const carolClosed = linkEvent(alice, 'closed', 'carol');
        await linked(alice, peers[2]);
        expect((await carolClosed).reason).toMatch(/least recently used of 2 links/);
        expect(alice.features.links.list().map(link => link.peerId).sort()).toEqual(['bob', 'dave']);
    });

    it('an idle link is closed', async () => {
        const broker = await resources.broker();
        const alice = await linkedPeer(broker.url, 'alice', { idleMs: 300, allow: () => true });
        const bob = await linkedPeer(broker.url, 'bob', { allow: () => true });
        void bob;
        const closed = linkEvent(alice, 'closed', 'bob');
        await alice.features.links.open('bob');
        expect((await closed).reason).toMatch(/idle for 300 ms/);
        expect(alice.features.links.list()).toEqual([]);
    });

    it('the broker\'s rate limit applies on a link: calls over it fail with RateLimited, idempotent ones go on through the broker', async () => {
        const broker = await resources.broker();
        const stats = broker.app.get(BrokerStats);
        const alice = await linkedPeer(broker.url, 'alice', { allow: () => true });
        const bob = await linkedPeer(broker.url, 'bob', { allow: () => true, limits: { framesPerSecond: 20, maxFrameBytes: 1 << 20, bytesPerSecond: 1 << 24 } });
        await linked(alice, bob);

        const plain = alice.to('bob').controller<EchoController>(EchoController.path);
        const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => plain.echo(`call ${i}`).catch(error => error)));
        const limited = outcomes.filter(outcome => outcome instanceof RateLimited);
        expect(limited.length).toBeGreaterThan(0);
        expect(outcomes.filter(outcome => typeof outcome === 'string').length).toBeGreaterThan(0);

        const routedBefore = stats.framesRouted;
        const idempotent = alice.to('bob').controller<EchoController>(EchoController.path, { idempotent: ['echo'] });
        const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => idempotent.echo(`call ${i}`)));
        expect(answers).toEqual(Array.from({ length: 100 }, (_, i) => `call ${i}`));
        expect(stats.framesRouted).toBeGreaterThan(routedBefore);
        expect(alice.features.links.list()).toEqual([expect.objectContaining({ peerId: 'bob', state: 'open' })]);
    });

    it('an idempotent call in flight when its link drops is retried through the broker', async () => {
        const broker = await resources.broker();
        const alice = await linkedPeer(broker.url, 'alice', { allow: () => true });
        const bob = await linkedPeer(broker.url, 'bob', { allow: () => true });
        await linked(alice, bob);
        const held = alice.to('bob').controller<EchoController>(EchoController.path, { idempotent: ['hold'] }).hold();
        await heldCalls(1);
        bob.features.links.close('alice');
        // The first run is cut off with its link; the retry parks again, through the broker.
        await heldCalls(2);
        for (const release of EchoController.held.splice(0)) release();
        expect(await held).toBe('released');
    });
});
