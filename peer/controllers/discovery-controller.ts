import { rpc } from '@deepkit/rpc';
import { MaxLength } from '@deepkit/type';
import { DiscoveryApi, PeerDescription, PeerSighting } from '@switchboard/protocol';
import { DiscoveryService } from '../services/discovery-service';

@rpc.controller(DiscoveryApi)
export class DiscoveryController implements DiscoveryApi {
    constructor(protected discovery: DiscoveryService) {
    }

    @rpc.action()
    info(): PeerDescription {
        return this.discovery.describe();
    }

    @rpc.action()
    ping(): { at: Date } {
        return { at: new Date };
    }

    @rpc.action()
    capabilities(): string[] {
        return this.discovery.describe().capabilities;
    }

    @rpc.action()
    async knows(peerId: string & MaxLength<64>): Promise<PeerSighting | undefined> {
        return this.discovery.knows(peerId);
    }
}
