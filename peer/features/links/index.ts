import { LinksApi } from '@switchboard/protocol';
import type { PeerFeature } from '../../feature';
import { DirectLinks, DirectLinksOptions } from './direct-links';
import { LinksController } from './links-controller';

export { DirectLinks, defaultDirectLinksOptions } from './direct-links';
export type { DirectLinksOptions, LinkEvent, LinkInfo } from './direct-links';
export type { LinkLimits } from './link-channel';
export type { LinkPolicy } from './link-policy';
export type { PeerConnectionClass } from './webrtc';

/**
 * Direct links (WebRTC data channels) to other peers, as a feature: calls to a linked peer go over the link, with
 * the same API; everything else, and everything when a link drops, through the broker.
 *
 * ```ts
 * const alice = await Peer.connect({ url, id: 'alice', features: { links: directLinks() } });
 * alice.features.links.changes$.subscribe(event => console.log(event.kind, event.peerId));
 * ```
 */
export function directLinks(options: Partial<DirectLinksOptions> = {}): PeerFeature<DirectLinks> {
    return {
        setup(context) {
            const links = new DirectLinks(context, options);
            return {
                api: links,
                providers: [{ provide: DirectLinks, useValue: links }],
                controllers: [[LinksController, LinksApi]],
                started: () => links.started(),
                directPath: peerId => links.directPath(peerId),
                close: () => links.shutdown(),
            };
        },
    };
}
