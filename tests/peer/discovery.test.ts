import { PeerNotFound } from '../../shared';
import { startSwitchboard } from '../../testing/test-kit';
import { collect } from '../helpers';

describe('discovery', () => {
    it('the discovery controller answers info, ping, capabilities and what it knows', async () => {
        // bob follows everyone's presence: what it knows of alice comes from it (by interest it would not follow her).
        await using kit = await startSwitchboard({ peers: [{ id: 'bob', capabilities: ['chat', 'files'], appVersion: '1.2.3', presence: 'all' }, 'alice'] });
        const bob = kit.peer('alice').to('bob').discovery;
        expect(await bob.info()).toMatchObject({ id: 'bob', appVersion: '1.2.3', capabilities: ['chat', 'files'] });
        expect((await bob.ping()).at).toBeInstanceOf(Date);
        expect(await bob.capabilities()).toEqual(['chat', 'files']);
        expect(await bob.knows('alice')).toMatchObject({ id: 'alice', online: true });
        expect(await bob.knows('zed')).toBeUndefined();
    });

    it('discover() walks the hierarchy: live peer → other peers → local cache → broker', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', { id: 'dave', capabilities: ['relay'] }] });
        const alice = kit.peer('alice');

        // live: dave is online and answers himself
        expect(await alice.discovery.discover('dave')).toMatchObject({ step: 'live', peer: { id: 'dave', online: true, capabilities: ['relay'] } });

        // peers: dave is gone; a newcomer asks alice, who saw him
        const gone = collect(alice.presence$, 1, e => e.peerId === 'dave' && e.kind === 'offline');
        await kit.peer('dave').close();
        await gone;
        // Follows everyone: the peers it may ask are those it knows online.
        const newcomer = await kit.addPeer({ id: 'newcomer', presence: 'all' });
        expect(await newcomer.discovery.discover('dave')).toMatchObject({ step: 'peers', peer: { id: 'dave', online: false, learnedFrom: 'alice' } });

        // cache: nobody else is online to ask, but the newcomer remembers
        const aliceGone = collect(newcomer.presence$, 1, e => e.peerId === 'alice' && e.kind === 'offline');
        await alice.close();
        await aliceGone;
        expect(await newcomer.discovery.discover('dave')).toMatchObject({ step: 'cache', peer: { id: 'dave' } });

        // broker: nobody left to ask, and a peer that never saw anyone asks about alice
        await newcomer.close();
        const stranger = await kit.addPeer('stranger');
        expect(await stranger.discovery.discover('alice')).toMatchObject({ step: 'broker', peer: { id: 'alice', online: false } });
        await expect(stranger.discovery.discover('nobody-ever')).rejects.toBeInstanceOf(PeerNotFound);
    });
});
