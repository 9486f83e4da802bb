import { ControllerSymbol } from '@deepkit/rpc';
import { entity, MaxLength, MinLength, Positive, integer, Maximum } from '@deepkit/type';

/** An opaque message for a relay: `kind` tells the recipient how to read `body` (e.g. `chat`, JSON). */
@entity.name('@switchboard/RelayPayload')
export class RelayPayload {
    constructor(
        public id: string & MinLength<1> & MaxLength<64>,
        public kind: string & MinLength<1> & MaxLength<64>,
        public body: string & MaxLength<1000000>,
    ) {
    }
}

/** A payload on its way, with the original sender as the relay verified it. */
@entity.name('@switchboard/RelayEnvelope')
export class RelayEnvelope {
    constructor(
        public payload: RelayPayload,
        /**
         * Verified by the relay from its caller: the recipient believes it only from the sender itself or from a
         * relay it trusts, and as much as it trusts that relay.
         */
        public originalSender: string & MaxLength<64>,
        public recipient: string & MaxLength<64>,
        /** The relay that carried it. */
        public via: string & MaxLength<64>,
        public storedAt: Date = new Date,
    ) {
    }
}

@entity.name('@switchboard/DeliveryReceipt')
export class DeliveryReceipt {
    constructor(
        public payloadId: string & MaxLength<64>,
        public recipient: string & MaxLength<64>,
        public deliveredAt: Date,
        public via: string & MaxLength<64>,
    ) {
    }
}

/**
 * Capabilities a peer announces for each relay it trusts (`relay.trustedRelays`): `via:carol`, `via:relay-*`. A sender
 * reads them from the broker's registry (kept while the peer is offline) to pick a relay the recipient will accept.
 */
export const TRUSTED_RELAY_CAPABILITY = 'via:';

export type TtlSeconds = integer & Positive & Maximum<2592000>;

export interface RelayApi {
    /** Forwards now to `recipient`, who sees the caller as original sender. Fails if it is offline. */
    forward(recipient: string & MaxLength<64>, payload: RelayPayload): Promise<DeliveryReceipt>;

    /** Keeps the payload until `recipient` comes online (or the TTL ends); a receipt goes back to the caller. */
    store(recipient: string & MaxLength<64>, payload: RelayPayload, ttlSeconds?: TtlSeconds): Promise<{ payloadId: string, expiresAt: Date }>;

    /** What this relay holds for the caller, oldest first, handed over and forgotten: at most 8 MiB a call, so pull until []. */
    pull(): Promise<RelayEnvelope[]>;

    /**
     * A payload for us, from its original sender directly or from a relay we use (`relay.trustedRelays`), which
     * vouches for the original sender; anyone else gets AccessDenied (`untrusted-relay`). Idempotent by payload id.
     */
    deliver(envelope: RelayEnvelope): Promise<void>;

    /**
     * Our stored payload was delivered: told by the recipient itself, or by a relay we use naming itself as `via`;
     * anyone else gets AccessDenied (`untrusted-receipt`).
     */
    receipt(receipt: DeliveryReceipt): Promise<void>;
}

export const RelayApi = ControllerSymbol<RelayApi>('switchboard/relay', [RelayPayload, RelayEnvelope, DeliveryReceipt]);
export const relayIdempotent = ['deliver', 'receipt', 'pull'] as const;
