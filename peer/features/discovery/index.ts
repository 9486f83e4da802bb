import { DiscoveryApi } from '@switchboard/protocol';
import type { PeerFeature } from '../../feature';
import { DiscoveryController } from '../../controllers/discovery-controller';
import { DiscoveryService } from '../../services/discovery-service';
import { KnownPeer } from '../../storage/entities';

export { DiscoveryService } from '../../services/discovery-service';

/**
 * Discovery as a feature: `discover('bob')` asks the peer itself, then peers it knows, then its cache, then the
 * broker; answers other peers' questions with what it knows. `Peer` carries it as `peer.discovery`.
 */
export function discovery(): PeerFeature<DiscoveryService> {
    return {
        entities: [KnownPeer],
        setup(context) {
            const service = new DiscoveryService(context.database, context.peer);
            return {
                api: service,
                providers: [{ provide: DiscoveryService, useValue: service }],
                controllers: [[DiscoveryController, DiscoveryApi]],
                close: () => service.idle(),
            };
        },
    };
}
