import { DatabaseAdapter, DatabaseSession, UniqueConstraintFailure } from '@deepkit/orm';
import { ControllerDefinition } from '@deepkit/rpc';
import { Observable, Subject } from 'rxjs';
import { ChatApi, ChatEntry, ChatGroupInfo, ChatMessage, DeliveryStatus, FanOutResult, MAX_GROUP_MEMBERS, MAX_READ_IDS, MessagePath, AccessDenied, NotFound, QuotaExceeded } from '@switchboard/protocol';
import { BroadcastOptions, BroadcastResult } from '../broadcast';
import { Outbox, OutboxItem, Queued } from '../outbox';
import { RemotePeer } from '../remote-peer';
import { ChatGroupRecord, ChatRecord } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';
import type { Sealing } from '../sealing';
import { handedOn } from '@switchboard/protocol/internal';
import { ChatOptions, defaultChatOptions } from './chat-options';
import { ChatPaths, PathChange, RelayPort } from './delivery-path';
import { key, rank, strandedChats, toEntry } from './chat-records';
import { SenderQuota, textBytes } from './sender-quota';

/** Ids per statement when statuses change: a `markRead` of many ids runs as several bounded queries. */
const STATUS_BATCH = 500;

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

/** What became of one member's copy of a group message sent by multicast. */
type CopyFate = 'delivered' | 'retry' | { refused: string };

/**
 * This peer's chat: direct messages with delivery status and read receipts, groups, history. Messages to offline
 * peers wait in the outbox and go out when the broker reports the peer back (or after a restart of this process).
 */
export class ChatService {
    /** Every change: a message received, or the status of one we sent. */
    readonly updates$ = new Subject<ChatEntry>();
    /** Groups we were added to, and groups we created. */
    readonly groups$ = new Subject<ChatGroupInfo>();
    /**
     * Members a group message is on its way to by multicast, outside the outbox: what is queued for them meanwhile
     * waits here until the copy's fate is known (and, if it missed, its outbox entry is queued), so it arrives after.
     */
    protected inFlight = new Map<string, Promise<unknown>>();
    /** Unread messages each sender has stored here. */
    protected unread: SenderQuota;
    /** The path each message takes (link, broker, relay peer, outbox). */
    protected paths: ChatPaths;
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
        this.paths = new ChatPaths(transport, database);
        this.paths$ = this.paths.changes$;
        outbox.handle('chat', async (recipient, message: ChatMessage) => {
            const path = await this.paths.deliver(recipient, new ChatMessage(message.id, message.text, new Date(message.sentAt), message.groupId));
            // Held by a relay: delivered once the relay's receipt says so.
            await this.setStatus('out', recipient, [message.id], path === 'relay' ? 'queued' : 'delivered', path);
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
        const queued = await this.enqueue({ recipient: to, kind: 'chat', payload: message, id: message.id }, session => session.add(record));
        this.updates$.next(toEntry(record));
        // (A direct link to the recipient carries it even then: no need to wait.)
        if (this.transport.state !== undefined && this.transport.state !== 'registered' && !this.paths.linked(to)) {
            // Not connected: waiting for the first attempt would keep the app silent until the broker is back.
            void queued.outcome.catch(() => this.setStatus('out', to, [message.id], 'failed')).catch(() => undefined);
            this.paths.queued(to);
            await this.setStatus('out', to, [message.id], 'queued', 'outbox');
            return toEntry(await this.record('out', to, message.id));
        }
        try {
            const result = await queued.outcome;
            if (result === 'queued') {
                this.paths.queued(to);
                await this.setStatus('out', to, [message.id], 'queued', 'outbox');
            }
        } catch (error) {
            await this.setStatus('out', to, [message.id], 'failed');
            throw error;
        }
        return toEntry(await this.record('out', to, message.id));
    }

    /** Marks messages from `peerId` as read here, and tells their sender (queued if it is offline). */
    async markRead(peerId: string, ids: string[]): Promise<void> {
        const changed = await this.setStatus('in', peerId, ids, 'read');
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
        const all = [...new Set([this.transport.id, ...members])];
        if (all.length > MAX_GROUP_MEMBERS) throw tooManyMembers();
        const group = new ChatGroupInfo(crypto.randomUUID(), name, all, this.transport.id);
        await this.database.persist(new ChatGroupRecord(group.id, group.name, group.members, group.owner));
        this.groups$.next(group);
        await Promise.all(all.filter(m => m !== this.transport.id).map(member => this.outbox.send(member, 'chat-group', group)));
        return group;
    }

    /** Adds a member to a group this peer owns; every member hears of the new list (queued if offline). */
    async invite(groupId: string, peerId: string): Promise<ChatGroupInfo> {
        const record = await this.database.query(ChatGroupRecord).filter({ id: groupId }).findOneOrUndefined();
        if (!record) throw new NotFound(`No group ${groupId} on this peer.`, 'group');
        if (record.owner !== this.transport.id) throw new AccessDenied(`Only the owner (${record.owner}) can invite to this group.`, 'not-the-owner');
        if (!record.members.includes(peerId)) {
            if (record.members.length >= MAX_GROUP_MEMBERS) throw tooManyMembers();
            record.members = [...record.members, peerId];
        }
        await this.database.persist(record);
        const group = new ChatGroupInfo(record.id, record.name, record.members, record.owner);
        this.groups$.next(group);
        await Promise.all(group.members.filter(m => m !== this.transport.id).map(member => this.outbox.send(member, 'chat-group', group)));
        return group;
    }

    async groups(): Promise<ChatGroupInfo[]> {
        return (await this.database.query(ChatGroupRecord).find()).map(g => new ChatGroupInfo(g.id, g.name, g.members, g.owner));
    }

    /**
     * Sends to every other member; the result counts who has it, who will get it later, and who cannot. The members
     * the broker can reach now get it from one frame (the broker copies it to each); a member with messages still
     * queued gets it through the outbox, behind them, and so does one the copy did not reach.
     */
    async sendToGroup(groupId: string, text: string): Promise<FanOutResult> {
        const group = await this.database.query(ChatGroupRecord).filter({ id: groupId }).findOneOrUndefined();
        if (!group) throw new NotFound(`No group ${groupId} on this peer.`, 'group');
        const recipients = group.members.filter(member => member !== this.transport.id);
        // One id for every copy: a receiver keys what it stores by sender and id.
        const message = new ChatMessage(crypto.randomUUID(), text, new Date, groupId);
        const behindQueue = new Set(await this.outbox.queuedAmong(recipients));
        // Sealed end to end, each member's copy is its own box: one frame for all cannot carry them, the outbox does.
        const direct = this.transport.sealing?.enabled ? [] : recipients.filter(member => !behindQueue.has(member) && !this.inFlight.has(member));
        const directSet = new Set(direct);
        let release!: () => void;
        const copiesSettled = new Promise<void>(resolve => release = resolve);
        for (const member of direct) this.hold(member, copiesSettled);

        const statuses = new Map<string, Promise<{ status: DeliveryStatus, error?: string }>>();
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
                if (!directSet.has(member)) statuses.set(member, this.afterFirstAttempt(member, message.id, this.enqueue(item(member))));
            }
            const fates = await this.multicast(direct, message);
            for (const member of direct) {
                const fate = fates.get(member) ?? 'retry';
                if (fate === 'delivered') {
                    statuses.set(member, this.setStatus('out', member, [message.id], 'delivered', 'broker').then(() => ({ status: 'delivered' as const })));
                } else if (fate === 'retry') {
                    // This member's own hold is still on: straight into the outbox, ahead of what waits for the hold.
                    statuses.set(member, this.afterFirstAttempt(member, message.id, this.outbox.enqueue(item(member))));
                } else {
                    statuses.set(member, this.setStatus('out', member, [message.id], 'failed').then(() => ({ status: 'failed' as const, error: fate.refused })));
                }
            }
        } finally {
            release();
        }

        const result: FanOutResult = { sent: 0, queued: 0, failed: 0, recipients: [] };
        for (const member of recipients) {
            const { status, error } = await statuses.get(member)!.catch(caught => ({ status: 'failed' as const, error: String(caught?.message ?? caught) }));
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
            relayDelivered: async (recipient, id) => void await this.setStatus('out', recipient, [id], 'delivered', 'relay'),
        });
    }

    /** Stores a message from `from` once, however often (and by whichever path) it is delivered. */
    async receive(from: string, message: ChatMessage, path?: MessagePath): Promise<DeliveryStatus> {
        const existing = await this.database.query(ChatRecord).filter({ key: key('in', from, message.id) }).findOneOrUndefined();
        if (existing) return 'delivered';
        if (message.groupId && !await this.isMember(message.groupId, from)) {
            throw new AccessDenied(`"${from}" is not a member of group ${message.groupId} here.`, 'not-a-member');
        }
        const record = new ChatRecord(key('in', from, message.id), message.id, from, 'in', message.text, message.sentAt);
        record.groupId = message.groupId;
        record.status = 'delivered';
        record.path = path;
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
        return (await this.setStatus('out', from, ids, 'read')).length;
    }

    async joinGroup(from: string, group: ChatGroupInfo): Promise<void> {
        if (group.owner !== from) throw new AccessDenied('Only the owner of a group can add members.', 'not-the-owner');
        if (!group.members.includes(this.transport.id)) throw new AccessDenied('This peer is not in the member list.', 'not-a-member');
        // In one serialized transaction: concurrent joins of new groups cannot pass the quota together.
        await this.database.write(async session => {
            const existing = await session.query(ChatGroupRecord).filter({ id: group.id }).findOneOrUndefined();
            if (existing && existing.owner !== from) throw new AccessDenied('A group with this id belongs to another owner.', 'not-the-owner');
            if (!existing && await session.query(ChatGroupRecord).filter({ owner: from }).count() >= this.options.groupsPerOwner) {
                const error = new QuotaExceeded(`"${from}" has added this peer to ${this.options.groupsPerOwner} groups already, the limit per owner. Reuse a group, or ask its owner to raise chat.groupsPerOwner.`, this.options.groupsPerOwner);
                error.stack = '';
                throw error;
            }
            const record = existing ?? new ChatGroupRecord(group.id, group.name, group.members, group.owner);
            record.members = group.members;
            record.name = group.name;
            session.add(record);
        });
        this.groups$.next(new ChatGroupInfo(group.id, group.name, group.members, group.owner));
    }

    /**
     * Queues through the outbox; behind a group message still on its way to the recipient by multicast, if there is
     * one. Calls for one recipient are queued in the order they were made.
     */
    protected async enqueue(item: OutboxItem, alongside?: (session: DatabaseSession<DatabaseAdapter>) => unknown): Promise<Queued> {
        const hold = this.inFlight.get(item.recipient);
        if (!hold) return this.outbox.enqueue(item, alongside);
        const queued = hold.then(() => this.outbox.enqueue(item, alongside));
        this.hold(item.recipient, queued);
        return queued;
    }

    /** Makes what is queued for `recipient` from now on wait for `until`. */
    protected hold(recipient: string, until: Promise<unknown>): void {
        const settled = until.then(() => undefined, () => undefined);
        this.inFlight.set(recipient, settled);
        void settled.then(() => {  // `settled` never rejects
            if (this.inFlight.get(recipient) === settled) this.inFlight.delete(recipient);
        });
    }

    /** The status of a message whose record exists, once the outbox made its first attempt (see `send`). */
    protected async afterFirstAttempt(to: string, id: string, queued: Promise<Queued>): Promise<{ status: DeliveryStatus, error?: string }> {
        try {
            if (await (await queued).outcome === 'queued') {
                await this.setStatus('out', to, [id], 'queued');
                return { status: 'queued' };
            }
            return { status: 'delivered' };
        } catch (error) {
            await this.setStatus('out', to, [id], 'failed');
            return { status: 'failed', error: error instanceof Error ? error.message : String(error) };
        }
    }

    /**
     * Hands `message` to `members` in one frame. A member whose chat stored it is `delivered`; one the broker's send
     * policy refuses is refused for good; any other (offline, unknown, an error, no answer) is for the outbox to retry.
     */
    protected async multicast(members: string[], message: ChatMessage): Promise<Map<string, CopyFate>> {
        const fates = new Map<string, CopyFate>();
        if (!members.length) return fates;
        let result: BroadcastResult<{ id: string, status: DeliveryStatus }>;
        try {
            result = await this.transport.broadcast(members, ChatApi, 'receive', [message], { collectReplies: true });
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

    protected async isMember(groupId: string, peerId: string): Promise<boolean> {
        const group = await this.database.query(ChatGroupRecord).filter({ id: groupId }).findOneOrUndefined();
        return !!group && group.members.includes(peerId);
    }

    /** No retries here: the outbox is the retry, and it keeps the order of messages. */
    protected remote(peerId: string) {
        return this.transport.to(peerId).controller<ChatApi>(ChatApi);
    }

    protected async record(direction: 'in' | 'out', peerId: string, id: string): Promise<ChatRecord> {
        return this.database.query(ChatRecord).filter({ key: key(direction, peerId, id) }).findOne();
    }

    /**
     * Moves messages forward only (sending → queued → delivered → read, or to failed), and records the `path` of those
     * still on their way; returns the ids that changed.
     */
    protected async setStatus(direction: 'in' | 'out', peerId: string, ids: string[], status: DeliveryStatus, path?: MessagePath): Promise<string[]> {
        const unique = [...new Set(ids)];
        const changedIds: string[] = [];
        for (let start = 0; start < unique.length; start += STATUS_BATCH) {
            const batch = unique.slice(start, start + STATUS_BATCH);
            // Read and written in one serialized transaction: a "delivered" that read the record before a concurrent
            // "read" was written would otherwise write over it, and the status would go backwards.
            const changed = await this.database.write(async session => {
                const records = await session.query(ChatRecord).filter({ key: { $in: batch.map(id => key(direction, peerId, id)) } }).find();
                const moved = records.filter(record => status === 'failed'
                    // `failed` ends only a message still on its way.
                    ? ['sending', 'queued'].includes(record.status)
                    : rank[status] > rank[record.status] || (path !== undefined && path !== record.path && rank[status] === rank[record.status]));
                for (const record of moved) {
                    record.status = status;
                    if (path) record.path = path;
                }
                session.add(...moved);
                return moved;
            });
            if (!changed.length) continue;
            if (direction === 'in' && status === 'read') this.unread.release(peerId, changed.length, changed.reduce((sum, record) => sum + textBytes(record.text), 0));
            for (const record of changed) this.updates$.next(toEntry(record));
            changedIds.push(...changed.map(record => record.id));
        }
        return changedIds;
    }
}

function tooManyMembers(): QuotaExceeded {
    return new QuotaExceeded(`A group has at most ${MAX_GROUP_MEMBERS} members.`, MAX_GROUP_MEMBERS);
}
