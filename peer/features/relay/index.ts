import { RelayApi } from '@switchboard/protocol';
import type { PeerFeature } from '../../feature';
import { RelayController } from '../../controllers/relay-controller';
import { withTrustedRelays } from '../../services/delivery-path';
import { RelayService } from '../../services/relay-service';
import { defaultRelayOptions, RelayOptions } from '../../services/relay-options';
import { HeldPayload, ReceiptRecord, ReceivedPayload } from '../../storage/entities';

export { RelayService } from '../../services/relay-service';
export type { RelayOptions } from '../../services/relay-options';

/**
 * Relay and store-and-forward as a feature: this peer forwards or keeps payloads for others (within `options`), and
 * takes the payloads and receipts relays hand it. `Peer` carries it as `peer.relay` (options: `PeerOptions.relay`).
 */
export function relay(options: Partial<RelayOptions> = {}): PeerFeature<RelayService> {
    return {
        entities: [HeldPayload, ReceivedPayload, ReceiptRecord],
        setup(context) {
            const service = new RelayService(context.database, context.peer.outbox, context.peer, { ...defaultRelayOptions, ...options }, context.clock);
            return {
                api: service,
                providers: [{ provide: RelayService, useValue: service }],
                controllers: [[RelayController, RelayApi]],
                // Senders read whom this peer trusts as a relay from its capabilities.
                capabilities: announced => withTrustedRelays(announced, options.trustedRelays),
            };
        },
    };
}
