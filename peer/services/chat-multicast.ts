import { ChatApi, ChatMessage, DeliveryStatus } from '@switchboard/protocol';
import { handedOn } from '@switchboard/protocol/internal';
import { BroadcastResult } from '../broadcast';
import type { ChatTransport } from './chat-service';

/** What became of one member's copy of a group message sent by multicast. */
export type CopyFate = 'delivered' | 'retry' | { refused: string };

/**
 * Hands `message` to `members` in one frame. A member whose chat stored it is `delivered`; one the broker's send
 * policy refuses is refused for good; any other (offline, unknown, an error, no answer) is for the outbox to retry.
 */
export async function multicastChat(transport: ChatTransport, members: string[], message: ChatMessage): Promise<Map<string, CopyFate>> {
    const fates = new Map<string, CopyFate>();
    if (!members.length) return fates;
    let result: BroadcastResult<{ id: string, status: DeliveryStatus }>;
    try {
        result = await transport.broadcast(members, ChatApi, 'receive', [message], { collectReplies: true });
    } catch {
        // Not sent, or no answer from the broker: each member gets it through the outbox.
        return fates;
    }
    for (const member of members) {
        const reply = result.replies?.[member];
        if (result.outcomes[member] === 'denied') {
            fates.set(member, { refused: `The broker's send policy does not allow messages from this peer to "${member}"; ask its administrator for access.` });
        } else {
            fates.set(member, handedOn(result.outcomes[member]) && reply && 'result' in reply ? 'delivered' : 'retry');
        }
    }
    return fates;
}
