import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { DiscoveryApi, FilesApi, NotFound, RelayApi } from '../../shared';
import { chat, Peer, PeerCore, relay } from '../../peer';
import { peerInternals } from '../../peer/internal';
import { startSwitchboard } from '../../testing/test-kit';
import { Resources } from '../helpers';

const resources = new Resources();
afterEach(() => resources.closeAll());

describe('built-in features on the lean PeerCore', () => {
    it('a PeerCore with chat only chats with a full Peer, and serves no other built-in', async () => {
        await using kit = await startSwitchboard({ peers: ['bob'] });
        const bob = kit.peer('bob');
        const tab = resources.add(await PeerCore.connect({ url: kit.url, id: 'tab', features: { chat: chat() } }), p => p.close());

        const arrived = firstValueFrom(bob.chat.updates$.pipe(filter(entry => entry.peerId === 'tab' && entry.direction === 'in')));
        expect(await tab.features.chat.send('bob', 'from a lean tab')).toMatchObject({ status: 'delivered' });
        expect((await arrived).text).toBe('from a lean tab');
        const reply = await bob.chat.send('tab', 'hello, tab');
        expect(reply.status).toBe('delivered');
        expect((await tab.features.chat.history('bob')).map(entry => entry.text)).toEqual(['from a lean tab', 'hello, tab']);

        // What it was not given, it does not serve: discovery, relay and files are unknown controllers on it.
        const refusals = [
            await bob.to('tab').controller<DiscoveryApi>(DiscoveryApi).ping().catch((error: unknown) => error),
            await bob.to('tab').controller<RelayApi>(RelayApi).pull().catch((error: unknown) => error),
            await bob.to('tab').controller<FilesApi>(FilesApi).list().catch((error: unknown) => error),
        ];
        for (const refused of refusals) expect(refused).toMatchObject({ constructor: NotFound, what: 'controller' });
        // The same calls to a full Peer are served.
        expect(await tab.to('bob').controller<FilesApi>(FilesApi).list()).toEqual([]);
    });

    it('a feature adds to the announced capabilities: relay() publishes the relays this peer trusts', async () => {
        await using kit = await startSwitchboard({ peers: ['bob'] });
        const tab = resources.add(await PeerCore.connect({ url: kit.url, id: 'tab', sealing: false, capabilities: ['app'], features: { relay: relay({ trustedRelays: ['carol'] }) } }), p => p.close());
        expect(tab.announcedCapabilities()).toEqual(['app', 'via:carol']);
        expect((await kit.peer('bob').broker.getPeer('tab')).capabilities).toEqual(['app', 'via:carol']);
        await tab.announce(['app', 'more']);
        expect((await kit.peer('bob').broker.getPeer('tab')).capabilities).toEqual(['app', 'more', 'via:carol']);
    });

    it('the Deepkit client, kernel and storage are reached through peerInternals, and callTimeoutMs is read-only', async () => {
        await using kit = await startSwitchboard({ peers: ['alice'] });
        const alice: Peer = kit.peer('alice');
        // @ts-expect-error not public any more (typecheck fails here if it becomes public again)
        void alice.client;
        // @ts-expect-error not public any more
        void alice.database;
        const internals = peerInternals(alice);
        expect(internals.client.transporter.isConnected()).toBe(true);
        expect(await internals.database.getSetting('reclaim-secret:alice')).toEqual(expect.any(String));
        const timeout = alice.callTimeoutMs;
        expect(() => (alice as { callTimeoutMs: number }).callTimeoutMs = 1).toThrow(TypeError);
        expect(alice.callTimeoutMs).toBe(timeout);
    });
});
