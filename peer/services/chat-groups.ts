import { Subject } from 'rxjs';
import { ChatGroupInfo, MAX_GROUP_MEMBERS, AccessDenied, NotFound, QuotaExceeded } from '@switchboard/protocol';
import { Outbox } from '../outbox';
import { ChatGroupRecord } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';
import { ChatOptions } from './chat-options';

/**
 * The chat groups this peer knows: those it created (and invites to) and those their owners added it to. Each change
 * goes out to every other member through the outbox (queued while they are offline).
 */
export class ChatGroups {
    constructor(
        protected database: PeerDatabase,
        protected outbox: Outbox,
        /** This peer's ID. */
        protected self: () => string,
        protected options: ChatOptions,
        protected changes$: Subject<ChatGroupInfo>,
    ) {
    }

    async create(name: string, members: string[]): Promise<ChatGroupInfo> {
        const self = this.self();
        const all = [...new Set([self, ...members])];
        if (all.length > MAX_GROUP_MEMBERS) throw tooManyMembers();
        const group = new ChatGroupInfo(crypto.randomUUID(), name, all, self);
        await this.database.persist(new ChatGroupRecord(group.id, group.name, group.members, group.owner));
        this.changes$.next(group);
        await this.tellMembers(group);
        return group;
    }

    /** Adds a member to a group this peer owns; every member hears of the new list (queued if offline). */
    async invite(groupId: string, peerId: string): Promise<ChatGroupInfo> {
        const record = await this.find(groupId);
        if (!record) throw new NotFound(`No group ${groupId} on this peer.`, 'group');
        if (record.owner !== this.self()) throw new AccessDenied(`Only the owner (${record.owner}) can invite to this group.`, 'not-the-owner');
        if (!record.members.includes(peerId)) {
            if (record.members.length >= MAX_GROUP_MEMBERS) throw tooManyMembers();
            record.members = [...record.members, peerId];
        }
        await this.database.persist(record);
        const group = new ChatGroupInfo(record.id, record.name, record.members, record.owner);
        this.changes$.next(group);
        await this.tellMembers(group);
        return group;
    }

    async list(): Promise<ChatGroupInfo[]> {
        return (await this.database.query(ChatGroupRecord).find()).map(g => new ChatGroupInfo(g.id, g.name, g.members, g.owner));
    }

    async find(groupId: string): Promise<ChatGroupRecord | undefined> {
        return this.database.query(ChatGroupRecord).filter({ id: groupId }).findOneOrUndefined();
    }

    async isMember(groupId: string, peerId: string): Promise<boolean> {
        const group = await this.find(groupId);
        return !!group && group.members.includes(peerId);
    }

    /** `from` (verified by the broker) added this peer to its group, or changed the group's members or name. */
    async join(from: string, group: ChatGroupInfo): Promise<void> {
        if (group.owner !== from) throw new AccessDenied('Only the owner of a group can add members.', 'not-the-owner');
        if (!group.members.includes(this.self())) throw new AccessDenied('This peer is not in the member list.', 'not-a-member');
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
        this.changes$.next(new ChatGroupInfo(group.id, group.name, group.members, group.owner));
    }

    protected async tellMembers(group: ChatGroupInfo): Promise<void> {
        const self = this.self();
        await Promise.all(group.members.filter(m => m !== self).map(member => this.outbox.send(member, 'chat-group', group)));
    }
}

function tooManyMembers(): QuotaExceeded {
    return new QuotaExceeded(`A group has at most ${MAX_GROUP_MEMBERS} members.`, MAX_GROUP_MEMBERS);
}
