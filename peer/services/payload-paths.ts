import { MessagePath, RelayApi, RelayEnvelope, RelayPayload } from '@switchboard/protocol';
import { Outbox } from '../outbox';
import { sealRelayPayload } from '../sealing/sealed-payloads';
import { isAway, linkedNow, PathHost, RelayPort, trustedRelaysFor } from './delivery-path';

/**
 * `peer.relay.send(recipient, payload)`: a relay payload by the best path there is, as chat messages go (see
 * ChatPaths) — straight to the recipient over a direct link or the broker; when it is offline, held by an online relay
 * both trust; else this peer's outbox, which tries again when the recipient is back. The recipient takes it once
 * (its inbox deduplicates by original sender and payload id), whichever path brought it.
 *
 * Unlike chat, no order across paths: a payload held at a relay may arrive after one sent later directly.
 */
export class PayloadPaths {
    /** Sends waiting for their first attempt, by recipient and payload id, with the path that attempt took. */
    protected waiting = new Map<string, MessagePath | undefined>();

    constructor(protected host: PathHost, protected outbox: Outbox, protected relay: Pick<RelayPort, 'trusts'>) {
        outbox.handle('relay-send', async (recipient, payload: RelayPayload) => {
            const path = await this.carry(recipient, new RelayPayload(payload.id, payload.kind, payload.body));
            const key = recipient + ':' + payload.id;
            if (this.waiting.has(key)) this.waiting.set(key, path);
        });
    }

    async send(recipient: string, payload: RelayPayload): Promise<MessagePath> {
        const key = recipient + ':' + payload.id;
        this.waiting.set(key, undefined);
        try {
            // Committed before the first attempt: neither the recipient's absence nor a crash here loses it.
            const queued = await this.outbox.enqueue({ recipient, kind: 'relay-send', payload, id: payload.id });
            if (await queued.outcome === 'queued') return 'outbox';
            return this.waiting.get(key) ?? 'broker';
        } finally {
            this.waiting.delete(key);
        }
    }

    /** Rejects with the recipient's error (PeerOffline when away and no relay took it): the outbox keeps it then. */
    protected async carry(recipient: string, payload: RelayPayload): Promise<Exclude<MessagePath, 'outbox'>> {
        const direct = linkedNow(this.host, recipient);
        try {
            // Made in the same turn as the check above (see ChatPaths.call).
            const sealed = await sealRelayPayload(this.host.sealing, recipient, payload, false);
            await this.host.to(recipient).controller<RelayApi>(RelayApi).deliver(new RelayEnvelope(sealed, this.host.id, recipient, this.host.id));
            return direct ? 'direct' : 'broker';
        } catch (error) {
            if (!isAway(error)) throw error;
            for (const relay of await trustedRelaysFor(this.host, this.relay, recipient)) {
                try {
                    // Sealed for the recipient (the relay keeps ciphertext); refused for a key that lives in memory.
                    await this.host.to(relay).controller<RelayApi>(RelayApi).store(recipient, await sealRelayPayload(this.host.sealing, recipient, payload));
                    return 'relay';
                } catch {
                    continue;
                }
            }
            throw error;
        }
    }
}
