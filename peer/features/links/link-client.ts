import { ClientTransportAdapter } from '@deepkit/rpc';
import { Disconnected } from '@switchboard/protocol';
import { PeerClient } from '../../peer-client';

/**
 * The client a link calls the other side with. When the link closes, a stream still open on it ends with
 * Disconnected saying so: the link, not the broker, went away, and a new subscription takes the broker. Resuming
 * where the old stream stopped is the app's to decide (only it knows whether its items can be asked for again
 * from a position), so the stream is ended, never completed: a completion would read as "no more items".
 *
 * @reflection never
 */
export class LinkClient extends PeerClient {
    constructor(transport: ClientTransportAdapter, protected remotePeerId: string, protected closeReason: () => string) {
        super(transport);
    }

    override onClose(): void {
        this.openStreams.endAll(this.replies, new Disconnected(
            `The direct link to "${this.remotePeerId}" closed (${this.closeReason()}); this stream ended. ` +
            'Subscribe again: the new stream goes through the broker (or a new link), from where your app asks it to start.',
        ));
        super.onClose();
    }
}
