import { rpc } from '@deepkit/rpc';
import { MaxLength } from '@deepkit/type';
import { DeliveryReceipt, RelayApi, RelayEnvelope, RelayPayload, TtlSeconds } from '@switchboard/protocol';
import { CallerContext } from '../caller-context';
import { RelayService } from '../services/relay-service';

/** Serves relay and store-and-forward. Senders and recipients are the verified caller, never an argument. */
@rpc.controller(RelayApi)
export class RelayController implements RelayApi {
    constructor(protected relay: RelayService, protected caller: CallerContext) {
    }


    @rpc.action()
    async forward(recipient: string & MaxLength<64>, payload: RelayPayload): Promise<DeliveryReceipt> {
        return this.relay.forward(this.caller.requirePeerId(), recipient, payload);
    }

    @rpc.action()
    async store(recipient: string & MaxLength<64>, payload: RelayPayload, ttlSeconds?: TtlSeconds): Promise<{ payloadId: string, expiresAt: Date }> {
        return this.relay.store(this.caller.requirePeerId(), recipient, payload, ttlSeconds);
    }

    @rpc.action()
    async pull(): Promise<RelayEnvelope[]> {
        return this.relay.pull(this.caller.requirePeerId());
    }

    @rpc.action()
    async deliver(envelope: RelayEnvelope): Promise<void> {
        await this.relay.accept(this.caller.requirePeerId(), envelope);
    }

    @rpc.action()
    async receipt(receipt: DeliveryReceipt): Promise<void> {
        await this.relay.acceptReceipt(this.caller.requirePeerId(), receipt);
    }
}
