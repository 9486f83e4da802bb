import { ChatApi } from '@switchboard/protocol';
import type { PeerFeature } from '../../feature';
import { ChatPeerController } from '../../controllers/chat-controller';
import { ChatOptions, defaultChatOptions } from '../../services/chat-options';
import { ChatService } from '../../services/chat-service';
import { ChatGroupRecord, ChatRecord } from '../../storage/entities';
import { PeerDatabase } from '../../storage/peer-database';

export { ChatService } from '../../services/chat-service';
export type { ChatOptions } from '../../services/chat-options';

/**
 * Chat as a feature: messages with history, groups and read receipts, queued in the outbox while the other peer is
 * away. `Peer` carries it as `peer.chat`; a `PeerCore` only when given:
 *
 * ```ts
 * const alice = await PeerCore.connect({ url, id: 'alice', features: { chat: chat() } });
 * await alice.features.chat.send('bob', 'hi');
 * ```
 */
export function chat(options: Partial<ChatOptions> = {}): PeerFeature<ChatService> {
    return {
        entities: [ChatRecord, ChatGroupRecord],
        setup(context) {
            const service = new ChatService(context.database, context.peer.outbox, context.peer, { ...defaultChatOptions, ...options });
            return {
                api: service,
                providers: [{ provide: ChatService, useValue: service }],
                controllers: [[ChatPeerController, ChatApi]],
                knownPeers: limit => chatPeers(context.database, limit),
            };
        },
    };
}

/** Whom this peer chatted with, and the members of its groups. */
async function chatPeers(database: PeerDatabase, limit: number): Promise<string[]> {
    const ids: string[] = [];
    for (const row of await database.query(ChatRecord).select('peerId').groupBy('peerId').limit(limit).find()) ids.push(row.peerId);
    for (const row of await database.query(ChatGroupRecord).select('members').limit(limit).find()) ids.push(...row.members);
    return ids;
}
