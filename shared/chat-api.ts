import { ControllerSymbol } from '@deepkit/rpc';
import { entity, integer, MaxLength, MinLength, Positive } from '@deepkit/type';

export type MessageId = string & MinLength<1> & MaxLength<64>;

/**
 * Most members a group may have (WhatsApp allows 1,024). A receiver refuses a longer list before its chat sees it;
 * `createGroup` and `invite` refuse to grow a group past it.
 */
export const MAX_GROUP_MEMBERS = 1000;
/** Most message ids one `markRead` call carries; the SDK splits longer lists into several calls. */
export const MAX_READ_IDS = 1000;
export type ReadIds = MessageId[] & MaxLength<typeof MAX_READ_IDS>;

/** A chat message on the wire. The sender is not part of it: the receiver takes it from the verified caller. */
@entity.name('@switchboard/ChatMessage')
export class ChatMessage {
    constructor(
        public id: MessageId,
        public text: string & MinLength<1> & MaxLength<10000>,
        public sentAt: Date = new Date,
        /** Set for a message sent to a group. */
        public groupId?: string & MaxLength<64>,
    ) {
    }
}

/** sending → delivered → read, or sending → queued (recipient offline) → delivered → read. */
export type DeliveryStatus = 'sending' | 'queued' | 'delivered' | 'read' | 'failed';

/**
 * The way a message reached (or is on its way to) the other peer: over a `direct` link, through the `broker`, held by a
 * `relay` peer the recipient trusts, or waiting in the sender's `outbox` (it changes when the message goes out).
 */
export type MessagePath = 'direct' | 'broker' | 'relay' | 'outbox';

/** The relay payload kind of a chat message stored at a relay peer: its body is the ChatMessage as JSON. */
export const CHAT_RELAY_KIND = 'switchboard/chat';

/** A message as a peer keeps it: either direction, with its delivery status. */
@entity.name('@switchboard/ChatEntry')
export class ChatEntry {
    constructor(
        public id: string,
        /** The other peer of the conversation. */
        public peerId: string,
        public direction: 'in' | 'out',
        public text: string,
        public sentAt: Date,
        public status: DeliveryStatus,
        public groupId?: string,
        /** The path it took; unset for messages stored before paths were recorded. */
        public path?: MessagePath,
    ) {
    }
}

@entity.name('@switchboard/ChatGroup')
export class ChatGroupInfo {
    constructor(
        public id: string & MinLength<1> & MaxLength<64>,
        public name: string & MinLength<1> & MaxLength<200>,
        public members: (string & MaxLength<64>)[] & MaxLength<typeof MAX_GROUP_MEMBERS>,
        public owner: string & MaxLength<64>,
    ) {
    }
}

/** Messages of one `history` call; a remote caller gets at most 1,000, the latest. */
export type HistoryLimit = integer & Positive;

/** Per-recipient outcome of a group send. */
export interface FanOutResult {
    sent: number;
    queued: number;
    failed: number;
    recipients: { peerId: string, status: DeliveryStatus, error?: string }[];
}

/** What one peer's chat serves to others. */
export interface ChatApi {
    /** Delivers a message from the caller. Idempotent: the same id twice is stored once. */
    receive(message: ChatMessage): Promise<{ id: string, status: DeliveryStatus }>;

    /**
     * `receive`, sealed end to end (see the SDK's `peer.sealing`): a ChatMessage sealed for this peer's published key.
     * SealedPayloadInvalid if it does not open, SealedKeyChanged if the caller sealed with a key other than its pin.
     */
    receiveSealed(box: Uint8Array): Promise<{ id: string, status: DeliveryStatus }>;

    /** The caller tells us it read our messages. */
    markRead(ids: ReadIds): Promise<number>;

    /** The conversation between the caller and this peer; nobody can read another's conversation. */
    history(limit?: HistoryLimit): Promise<ChatEntry[]>;

    /** The caller (a group's owner) tells us about a group we are a member of. */
    joinGroup(group: ChatGroupInfo): Promise<void>;

    /** Local-only: forget all messages. */
    clearHistory(): Promise<void>;
}

export const ChatApi = ControllerSymbol<ChatApi>('switchboard/chat', [ChatMessage, ChatEntry, ChatGroupInfo]);
/** Actions of ChatApi that are safe to retry. */
export const chatIdempotent = ['receive', 'receiveSealed', 'markRead', 'history', 'joinGroup'] as const;
