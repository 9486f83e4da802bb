import { LinksUnavailable } from '../../shared';
import { Peer } from '../../peer';
import { directLinks } from '../../peer/features/links';
import { EchoController, Resources } from '../helpers';

// A Node without the optional WebRTC package (and, as in every Node, no RTCPeerConnection global).
jest.mock('@roamhq/wrtc', () => {
    throw new Error('Cannot find module \'@roamhq/wrtc\'');
});

const resources = new Resources();
afterEach(() => resources.closeAll());

describe('direct links without WebRTC', () => {
    it('say so with LinksUnavailable, and every call goes through the broker', async () => {
        const broker = await resources.broker();
        const connect = (id: string) => Peer.connect({ url: broker.url, id, features: { links: directLinks() }, expose: [[EchoController, EchoController.path]] })
            .then(peer => resources.add(peer, p => p.close()));
        const alice = await connect('alice');
        await connect('bob');
        expect(alice.features.links.unavailable).toBeInstanceOf(LinksUnavailable);
        expect(alice.features.links.unavailable!.message).toMatch(/npm install @roamhq\/wrtc/);
        await expect(alice.features.links.open('bob')).rejects.toBeInstanceOf(LinksUnavailable);
        expect(await alice.to('bob').controller<EchoController>(EchoController.path).echo('through the broker')).toBe('through the broker');
        expect(alice.features.links.list()).toEqual([]);
    });
});
