import { rpc } from '@deepkit/rpc';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { ChatGroupInfo, ChatMessage, InternalError, MAX_GROUP_MEMBERS, MAX_READ_IDS, QuotaExceeded, ValidationError } from '../../shared';
import { startSwitchboard } from '../../testing/test-kit';

/** A controller with a bug deep inside: what a remote caller must not learn the details of. */
@rpc.controller('test/buggy')
class BuggyController {
    @rpc.action()
    recurse(): number {
        const down = (depth: number): number => down(depth + 1) + 1;
        return down(0);
    }

    @rpc.action()
    sql(): void {
        throw new Error('SQLITE_ERROR: no such column: chat_records.secret near "SELECT * FROM chat_records"');
    }
}

describe('what a stranger can make a peer store or compute through chat', () => {
    it('unread messages per sender are bounded (count and bytes); reading them makes room again', async () => {
        await using kit = await startSwitchboard({ peers: [{ id: 'bob', chat: { unreadPerSender: 3, unreadBytesPerSender: 25 } }, 'mallory', 'alice'] });
        const fromMallory = kit.peer('mallory').to('bob').chat;
        for (let i = 0; i < 3; i++) await fromMallory.receive(new ChatMessage(`m-${i}`, 'spam'));
        await expect(fromMallory.receive(new ChatMessage('m-3', 'spam'))).rejects.toBeInstanceOf(QuotaExceeded);
        // A redelivery of a stored message is still acknowledged: the sender's outbox must not fail on it.
        await expect(fromMallory.receive(new ChatMessage('m-0', 'spam'))).resolves.toMatchObject({ status: 'delivered' });
        // Another sender has a quota of its own, in bytes as well as messages.
        await kit.peer('alice').to('bob').chat.receive(new ChatMessage('a-0', 'x'.repeat(25)));
        await expect(kit.peer('alice').to('bob').chat.receive(new ChatMessage('a-1', 'x'))).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });

        await kit.peer('bob').chat.markRead('mallory', ['m-0']);
        await fromMallory.receive(new ChatMessage('m-3', 'spam'));
        expect((await kit.peer('bob').chat.history('mallory')).map(entry => entry.id)).toEqual(['m-0', 'm-1', 'm-2', 'm-3']);
    });

    it('a sender that hits the quota sees its message failed, not lost in a retry loop', async () => {
        await using kit = await startSwitchboard({ peers: [{ id: 'bob', chat: { unreadPerSender: 1 } }, 'alice'] });
        await kit.peer('alice').chat.send('bob', 'first');
        await expect(kit.peer('alice').chat.send('bob', 'second')).rejects.toBeInstanceOf(QuotaExceeded);
        expect((await kit.peer('alice').chat.history('bob')).map(entry => [entry.text, entry.status])).toEqual([['first', 'delivered'], ['second', 'failed']]);
    });

    it('group member lists and the ids of one markRead are bounded before the chat sees them', async () => {
        await using kit = await startSwitchboard({ peers: ['bob', 'mallory'] });
        const chat = kit.peer('mallory').to('bob').chat;
        const members = ['mallory', 'bob', ...Array.from({ length: MAX_GROUP_MEMBERS - 1 }, (_, i) => `m-${i}`)];
        await expect(chat.joinGroup(new ChatGroupInfo('g-1', 'big', members, 'mallory'))).rejects.toBeInstanceOf(ValidationError);
        await expect(chat.markRead(Array.from({ length: MAX_READ_IDS + 1 }, (_, i) => `id-${i}`))).rejects.toBeInstanceOf(ValidationError);
        expect(await kit.peer('bob').chat.groups()).toEqual([]);

        // At the bounds, both are served.
        await chat.joinGroup(new ChatGroupInfo('g-1', 'big', members.slice(0, MAX_GROUP_MEMBERS), 'mallory'));
        expect(await chat.markRead(Array.from({ length: MAX_READ_IDS }, (_, i) => `id-${i}`))).toBe(0);
        await expect(kit.peer('bob').chat.createGroup('too big', members)).rejects.toBeInstanceOf(QuotaExceeded);
    });

    it('one owner adds the peer to a bounded number of groups; updates of a known group still pass', async () => {
        await using kit = await startSwitchboard({ peers: [{ id: 'bob', chat: { groupsPerOwner: 2 } }, 'mallory'] });
        const chat = kit.peer('mallory').to('bob').chat;
        await Promise.all(['g-1', 'g-2', 'g-3', 'g-4'].map(id => chat.joinGroup(new ChatGroupInfo(id, id, ['mallory', 'bob'], 'mallory')).catch(error => error)));
        expect((await kit.peer('bob').chat.groups()).length).toBe(2);
        const [kept] = await kit.peer('bob').chat.groups();
        const renamed = firstValueFrom(kit.peer('bob').chat.groups$.pipe(filter(group => group.name === 'renamed')));
        await chat.joinGroup(new ChatGroupInfo(kept.id, 'renamed', ['mallory', 'bob'], 'mallory'));
        await renamed;
        await expect(chat.joinGroup(new ChatGroupInfo('g-5', 'g-5', ['mallory', 'bob'], 'mallory'))).rejects.toBeInstanceOf(QuotaExceeded);
    });
});

describe('errors a remote caller gets from a peer', () => {
    it('an internal failure (stack overflow, SQL) reaches the caller as InternalError with a reference, no detail', async () => {
        await using kit = await startSwitchboard({ peers: [{ id: 'bob', expose: [[BuggyController, 'test/buggy']] }, 'alice'] });
        const buggy = kit.peer('alice').to('bob').controller<BuggyController>('test/buggy');
        const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
        try {
            for (const call of [() => buggy.recurse(), () => buggy.sql()]) {
                const error = await call().catch(caught => caught);
                expect(error).toBeInstanceOf(InternalError);
                expect(error.code).toBe('INTERNAL_ERROR');
                expect(error.message).not.toMatch(/stack|SQL|chat_records/i);
                // The detail is in bob's log, under the reference the caller got.
                expect(logged.mock.calls.some(args => String(args[0]).includes(error.reference))).toBe(true);
            }
        } finally {
            logged.mockRestore();
        }
    });
});
