import { rpc } from '@deepkit/rpc';
import { DiscoveryApi, MAX_CAPABILITIES, PeerDescription } from '../../shared';
import { startSwitchboard } from '../../testing/test-kit';
import { api, Resources } from '../helpers';

/** A peer whose discovery claims 5,000 capabilities of 100 characters each (half a megabyte, within the broker's limit). */
@rpc.controller(DiscoveryApi)
class BoastfulDiscovery {
    @rpc.action()
    info(): PeerDescription {
        return new PeerDescription('mallory', '1', Array.from({ length: 5000 }, (_, i) => `${i}`.padEnd(100, 'x')), 1);
    }
}

describe('what another peer can make discovery keep', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('capabilities from a peer\'s answer are cut to MAX_CAPABILITIES of 64 characters before this peer keeps them', async () => {
        await using kit = await startSwitchboard({ peers: ['alice'] });
        const mallory = resources.peerClient(kit.url);
        const registration = await api(mallory).register('mallory');
        mallory.servedPeerId = registration.peerId;
        mallory.peerKernel!.registerController(BoastfulDiscovery, DiscoveryApi.path);

        const { peer, step } = await kit.peer('alice').discovery.discover('mallory');
        expect(step).toBe('live');
        expect(peer.capabilities.length).toBe(MAX_CAPABILITIES);
        expect(Math.max(...peer.capabilities.map(capability => capability.length))).toBe(64);
    });
});
