import { UniqueConstraintFailure } from '@deepkit/orm';
import { ControllerDefinition } from '@deepkit/rpc';
import { Observable, Subject } from 'rxjs';
import { ChatApi, ChatEntry, ChatGroupInfo, ChatMessage, DeliveryStatus, FanOutResult, MAX_READ_IDS, MessagePath, AccessDenied, NotFound } from '@switchboard/protocol';
import { BroadcastOptions, BroadcastResult } from '../broadcast';
import { Outbox, OutboxItem, Queued } from '../outbox';
import { RemotePeer } from '../remote-peer';
import { ChatRecord } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';
import type { Sealing } from '../sealing';
import { ChatOptions, defaultChatOptions } from './chat-options';
import { ChatPaths, PathChange, RelayPort } from './delivery-path';
import { key, strandedChats, toEntry } from './chat-records';
import { SenderQuota, textBytes } from './sender-quota';
import { ChatGroups } from './chat-groups';
import { ChatStatuses } from './chat-statuses';
import { RecipientHolds } from './recipient-holds';
import { multicastChat } from './chat-multicast';

/** Where a ChatService sends: the remote chats of other peers. */
export interface ChatTransport {
    readonly id: string;
    /** Seals messages for recipients with a key (absent: plaintext only). */
    readonly sealing?: Sealing;
    /** `registered` while this peer can reach others now; anything else and a message waits in the outbox. */
    readonly state?: string;
    to(peerId: string): RemotePeer;
    /** One call to many peers in one frame, copied to each by the broker (see Peer.broadcast). */
    broadcast<R>(targets: readonly string[], controller: ControllerDefinition<any>, action: string, args: unknown[], options: BroadcastOptions): Promise<BroadcastResult<R>>;
}

/**
 * This peer's chat: direct messages with delivery status and read receipts, groups, history. Messages to offline
 * peers wait in the outbox and go out when the broker reports the peer back (or after a restart of this process).
 */
export class ChatService {
    /** Every change: a message received, or the status of one we sent. */
    readonly updates$ = new Subject<ChatEntry>();
    /** Groups we were added to, and groups we created. */
    readonly groups$ = new Subject<ChatGroupInfo>();
    /** Members a group message is on its way to by multicast, outside the outbox: what is queued for them waits. */
    protected inFlight: RecipientHolds;
    /** Unread messages each sender has stored here. */
    protected unread: SenderQuota;
    /** The path each message takes (link, broker, relay peer, outbox). */
    protected paths: ChatPaths;
    /** Stored messages' statuses, moved forward only. */
    protected statuses: ChatStatuses;
    /** Groups this peer created or was added to. */
    protected groupBook: ChatGroups;
    /** One event each time a conversation changes path (`direct`, `broker`, `relay`, `outbox`). */
    readonly paths$: Observable<PathChange>;

    /** @internal Built by the peer, never by an app. */
    constructor(protected database: PeerDatabase, protected outbox: Outbox, protected transport: ChatTransport, protected options: ChatOptions = defaultChatOptions) {
        this.unread = new SenderQuota(
            () => ({ items: this.options.unreadPerSender, bytes: this.options.unreadBytesPerSender }),
            async sender => {
                const records = await this.database.query(ChatRecord).filter({ peerId: sender, direction: 'in', status: 'delivered' }).select('text').find();
                return { items: records.length, bytes: records.reduce((sum, record) => sum + textBytes(record.text), 0) };
            },
            'unread messages',
            'Wait until the recipient reads them.',
        );
        this.statuses = new ChatStatuses(database, this.updates$, this.unread);
        this.groupBook = new ChatGroups(database, outbox, () => this.transport.id, options, this.groups$);
        this.inFlight = new RecipientHolds(outbox);
        this.paths = new ChatPaths(transport, database);
        this.paths$ = this.paths.changes$;
        outbox.handle('chat', async (recipient, message: ChatMessage) => {
            const path = await this.paths.deliver(recipient, new ChatMessage(message.id, message.text, new Date(message.sentAt), message.groupId));
            // Held by a relay: delivered once the relay's receipt says so.
            await this.statuses.set('out', recipient, [message.id], path === 'relay' ? 'queued' : 'delivered', path);
        });
        outbox.handle('chat-read', async (recipient, ids: string[]) => {
            await this.remote(recipient).markRead(ids);
        });
        outbox.handle('chat-group', async (recipient, group: ChatGroupInfo) => {
            await this.remote(recipient).joinGroup(new ChatGroupInfo(group.id, group.name, group.members, group.owner));
        });
        outbox.recover(strandedChats);
    }

    /**
     * Sends a direct message. Resolves once it is delivered, or queued because the recipient is offline; at once as
     * queued while this peer itself is not connected (the outbox sends it when the broker is back, and the status
     * moves on in `updates$`). Messages to one peer arrive in the order of the calls, even when they are not awaited
     * one by one.
     */
    async send(to: string, text: string, groupId?: string): Promise<ChatEntry> {
        const message = new ChatMessage(crypto.randomUUID(), text, new Date, groupId);
        const record = new ChatRecord(key('out', to, message.id), message.id, to, 'out', text, message.sentAt);
        record.groupId = groupId;
        // The record and its outbox entry commit together: a crash cannot leave a message that never goes out.
        const queued = await this.inFlight.enqueue({ recipient: to, kind: 'chat', payload: message, id: message.id }, session => session.add(record));
        this.updates$.next(toEntry(record));
        // (A direct link to the recipient carries it even then: no need to wait.)
        if (this.transport.state !== undefined && this.transport.state !== 'registered' && !this.paths.linked(to)) {
            // Not connected: waiting for the first attempt would keep the app silent until the broker is back.
            void queued.outcome.catch(() => this.statuses.set('out', to, [message.id], 'failed')).catch(() => undefined);
            this.paths.queued(to);
            await this.statuses.set('out', to, [message.id], 'queued', 'outbox');
            return toEntry(await this.statuses.record('out', to, message.id));
        }
        try {
            const result = await queued.outcome;
            if (result === 'queued') {
                this.paths.queued(to);
                await this.statuses.set('out', to, [message.id], 'queued', 'outbox');
            }
        } catch (error) {
            await this.statuses.set('out', to, [message.id], 'failed');
            throw error;
        }
        return toEntry(await this.statuses.record('out', to, message.id));
    }

    /** Marks messages from `peerId` as read here, and tells their sender (queued if it is offline). */
    async markRead(peerId: string, ids: string[]): Promise<void> {
        const changed = await this.statuses.set('in', peerId, ids, 'read');
        // The sender's peer takes at most MAX_READ_IDS ids a call.
        for (let start = 0; start < changed.length; start += MAX_READ_IDS) {
            await this.outbox.send(peerId, 'chat-read', changed.slice(start, start + MAX_READ_IDS));
        }
    }

    async history(peerId: string, limit = 100): Promise<ChatEntry[]> {
        const records = await this.database.query(ChatRecord).filter({ peerId }).orderBy('sentAt', 'desc').limit(limit).find();
        return records.reverse().map(toEntry);
    }

    async createGroup(name: string, members: string[]): Promise<ChatGroupInfo> {
        return this.groupBook.create(name, members);
    }

    /** Adds a member to a group this peer owns; every member hears of the new list (queued if offline). */
    async invite(groupId: string, peerId: string): Promise<ChatGroupInfo> {
        return this.groupBook.invite(groupId, peerId);
    }

    async groups(): Promise<ChatGroupInfo[]> {
        return this.groupBook.list();
    }

    /**
     * Sends to every other member; the result counts who has it, who will get it later, and who cannot. The members
     * the broker can reach now get it from one frame (the broker copies it to each); a member with messages still
     * queued gets it through the outbox, behind them, and so does one the copy did not reach.
     */
    async sendToGroup(groupId: string, text: string): Promise<FanOutResult> {
        const group = await this.groupBook.find(groupId);
        if (!group) throw new NotFound(`No group ${groupId} on this peer.`, 'group');
        const recipients = group.members.filter(member => member !== this.transport.id);
        // One id for every copy: a receiver keys what it stores by sender and id.
        const message = new ChatMessage(crypto.randomUUID(), text, new Date, groupId);
        const behindQueue = new Set(await this.outbox.queuedAmong(recipients));
        // Sealed end to end, each member's copy is its own box: one frame for all cannot carry them, the outbox does.
        const direct = this.transport.sealing?.enabled ? [] : recipients.filter(member => !behindQueue.has(member) && !this.inFlight.held(member));
        const directSet = new Set(direct);
        let release!: () => void;
        const copiesSettled = new Promise<void>(resolve => release = resolve);
        for (const member of direct) this.inFlight.hold(member, copiesSettled);

        const outcomes = new Map<string, Promise<{ status: DeliveryStatus, error?: string }>>();
        try {
            const records = recipients.map(member => {
                const record = new ChatRecord(key('out', member, message.id), message.id, member, 'out', text, message.sentAt);
                record.groupId = groupId;
                return record;
            });
            // Every record commits before anything goes out: after a crash, the recovery queues those still `sending`.
            await this.database.write(async session => session.add(...records));
            for (const record of records) this.updates$.next(toEntry(record));
            const item = (recipient: string): OutboxItem => ({ recipient, kind: 'chat', payload: message, id: message.id });
            for (const member of recipients) {
                if (!directSet.has(member)) outcomes.set(member, this.afterFirstAttempt(member, message.id, this.inFlight.enqueue(item(member))));
            }
            const fates = await multicastChat(this.transport, direct, message);
            for (const member of direct) {
                const fate = fates.get(member) ?? 'retry';
                if (fate === 'delivered') {
                    outcomes.set(member, this.statuses.set('out', member, [message.id], 'delivered', 'broker').then(() => ({ status: 'delivered' as const })));
                } else if (fate === 'retry') {
                    // This member's own hold is still on: straight into the outbox, ahead of what waits for the hold.
                    outcomes.set(member, this.afterFirstAttempt(member, message.id, this.outbox.enqueue(item(member))));
                } else {
                    outcomes.set(member, this.statuses.set('out', member, [message.id], 'failed').then(() => ({ status: 'failed' as const, error: fate.refused })));
                }
            }
        } finally {
            release();
        }

        const result: FanOutResult = { sent: 0, queued: 0, failed: 0, recipients: [] };
        for (const member of recipients) {
            const { status, error } = await outcomes.get(member)!.catch(caught => ({ status: 'failed' as const, error: String(caught?.message ?? caught) }));
            if (status === 'failed') result.failed++;
            else if (status === 'queued') result.queued++;
            else result.sent++;
            result.recipients.push({ peerId: member, status, error });
        }
        return result;
    }

    async clear(): Promise<void> {
        await this.database.query(ChatRecord).deleteMany();
        this.unread.reset();
    }

    // ---- called by ChatPeerController for a verified remote caller --------------------------------------------

    /**
     * Lets messages to an offline recipient go through a relay peer both trust, and takes the chat messages relays
     * hand over (see ChatPaths).
     */
    useRelay(relay: RelayPort): void {
        this.paths.useRelay(relay, {
            receive: (from, message, path) => this.receive(from, message, path),
            relayDelivered: async (recipient, id) => void await this.statuses.set('out', recipient, [id], 'delivered', 'relay'),
        });
    }

    /** Stores a message from `from` once, however often (and by whichever path) it is delivered. */
    async receive(from: string, message: ChatMessage, path?: MessagePath): Promise<DeliveryStatus> {
        const existing = await this.database.query(ChatRecord).filter({ key: key('in', from, message.id) }).findOneOrUndefined();
        if (existing) return 'delivered';
        if (message.groupId && !await this.groupBook.isMember(message.groupId, from)) {
            throw new AccessDenied(`"${from}" is not a member of group ${message.groupId} here.`, 'not-a-member');
        }
        const record = new ChatRecord(key('in', from, message.id), message.id, from, 'in', message.text, message.sentAt);
        record.groupId = message.groupId;
        record.status = 'delivered';
        record.path = path;
        const bytes = textBytes(message.text);
        await this.unread.reserve(from, bytes);
        try {
            await this.database.persist(record);
        } catch (error) {
            this.unread.release(from, 1, bytes);
            // The same message, delivered twice at once: the other delivery stored it.
            if (error instanceof UniqueConstraintFailure) return 'delivered';
            throw error;
        }
        this.updates$.next(toEntry(record));
        return 'delivered';
    }

    /** `from` read our messages: only messages we sent to `from` change. */
    async receiptRead(from: string, ids: string[]): Promise<number> {
        return (await this.statuses.set('out', from, ids, 'read')).length;
    }

    async joinGroup(from: string, group: ChatGroupInfo): Promise<void> {
        return this.groupBook.join(from, group);
    }

    /** The status of a message whose record exists, once the outbox made its first attempt (see `send`). */
    protected async afterFirstAttempt(to: string, id: string, queued: Promise<Queued>): Promise<{ status: DeliveryStatus, error?: string }> {
        try {
            if (await (await queued).outcome === 'queued') {
                await this.statuses.set('out', to, [id], 'queued');
                return { status: 'queued' };
            }
            return { status: 'delivered' };
        } catch (error) {
            await this.statuses.set('out', to, [id], 'failed');
            return { status: 'failed', error: error instanceof Error ? error.message : String(error) };
        }
    }

    /** No retries here: the outbox is the retry, and it keeps the order of messages. */
    protected remote(peerId: string) {
        return this.transport.to(peerId).controller<ChatApi>(ChatApi);
    }
}
