import { rpc } from '@deepkit/rpc';
import { ChatApi, ChatEntry, ChatGroupInfo, ChatMessage, DeliveryStatus, HistoryLimit, ReadIds, localOnly } from '@switchboard/protocol';
import { CallerContext } from '../caller-context';
import { Sealing } from '../sealing';
import { ChatService } from '../services/chat-service';

/** Serves this peer's chat to other peers. The caller is always the verified caller, never an argument. */
@rpc.controller(ChatApi)
export class ChatPeerController implements ChatApi {
    constructor(protected chat: ChatService, protected caller: CallerContext, protected sealing: Sealing) {
    }

    @rpc.action()
    async receive(message: ChatMessage): Promise<{ id: string, status: DeliveryStatus }> {
        return this.store(message, true);
    }

    /** `plaintext`: it came unsealed, which a contact with a pinned key never sends (see Sealing.assertPlaintextAllowed). */
    protected async store(message: ChatMessage, plaintext: boolean): Promise<{ id: string, status: DeliveryStatus }> {
        if (plaintext) await this.sealing.assertPlaintextAllowed(this.caller.requirePeerId(), 'chat');
        // A caller on a direct link has a connection ID of the link's (see DirectLink).
        const path = this.caller.connectionId.startsWith('link:') ? 'direct' : 'broker';
        return { id: message.id, status: await this.chat.receive(this.caller.requirePeerId(), message, path) };
    }

    @rpc.action()
    async receiveSealed(box: Uint8Array): Promise<{ id: string, status: DeliveryStatus }> {
        const from = this.caller.requirePeerId();
        return this.store(await this.sealing.openValue<ChatMessage>(from, 'chat', box), false);
    }

    @rpc.action()
    async markRead(ids: ReadIds): Promise<number> {
        return this.chat.receiptRead(this.caller.requirePeerId(), ids);
    }

    @rpc.action()
    async history(limit: HistoryLimit = 100): Promise<ChatEntry[]> {
        return this.chat.history(this.caller.requirePeerId(), Math.min(limit, 1000));
    }

    @rpc.action()
    async joinGroup(group: ChatGroupInfo): Promise<void> {
        await this.chat.joinGroup(this.caller.requirePeerId(), group);
    }

    @localOnly()
    async clearHistory(): Promise<void> {
        await this.chat.clear();
    }
}
