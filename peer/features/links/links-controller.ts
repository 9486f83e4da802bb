import { rpc } from '@deepkit/rpc';
import { LinkId, LinkNonce, LinksApi, LinkSdp } from '@switchboard/protocol';
import { CallerContext } from '../../caller-context';
import { DirectLinks } from './direct-links';

/** Signalling of direct links. The other side is always the verified caller (CallerContext), never an argument. */
@rpc.controller(LinksApi)
export class LinksController implements LinksApi {
    constructor(protected links: DirectLinks, protected caller: CallerContext) {
    }

    @rpc.action()
    async offer(linkId: LinkId, sdp: LinkSdp, nonce: LinkNonce): Promise<void> {
        await this.links.offered(this.caller.requirePeerId(), linkId, sdp, nonce);
    }

    @rpc.action()
    async answer(linkId: LinkId, sdp: LinkSdp, nonce: LinkNonce): Promise<void> {
        await this.links.answered(this.caller.requirePeerId(), linkId, sdp, nonce);
    }

    @rpc.action()
    async close(linkId: LinkId): Promise<void> {
        this.links.remoteClosed(this.caller.requirePeerId(), linkId);
    }
}
