import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { AccessDenied, ChatEntry, ChatMessage, NotRegistered } from '../../shared';
import { Peer } from '../../peer';
import { startSwitchboard } from '../../testing/test-kit';
import { collect, wentOffline } from '../helpers';
import { peerInternals } from '../../peer/internal';

function statusOf(peer: Peer, id: string, status: string): Promise<ChatEntry> {
    return firstValueFrom(peer.chat.updates$.pipe(filter(entry => entry.id === id && entry.status === status)));
}


describe('chat', () => {
    it('direct message: sending → delivered → read, with the verified sender on the other side', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        const alice = kit.peer('alice');
        const bob = kit.peer('bob');
        const received = firstValueFrom(bob.chat.updates$.pipe(filter(e => e.direction === 'in')));

        const sent = await alice.chat.send('bob', 'hello bob');
        expect(sent).toMatchObject({ peerId: 'bob', direction: 'out', text: 'hello bob', status: 'delivered' });
        expect(await received).toMatchObject({ id: sent.id, peerId: 'alice', direction: 'in', text: 'hello bob' });

        const read = statusOf(alice, sent.id, 'read');
        await bob.chat.markRead('alice', [sent.id]);
        await read;
        expect((await alice.chat.history('bob')).map(e => [e.text, e.status])).toEqual([['hello bob', 'read']]);
        expect((await bob.chat.history('alice')).map(e => [e.text, e.status])).toEqual([['hello bob', 'read']]);
    });

    it('the receiver deduplicates by message id (at-least-once delivery, exactly-once for the app)', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        const message = new ChatMessage('m-1', 'once', new Date);
        await kit.peer('alice').to('bob').chat.receive(message);
        await kit.peer('alice').to('bob').chat.receive(message);
        expect((await kit.peer('bob').chat.history('alice')).map(e => e.text)).toEqual(['once']);
    });

    it('a remote caller reads only its own conversation; clearing history is local-only', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob', 'carol'] });
        await kit.peer('alice').chat.send('bob', 'from alice');
        await kit.peer('carol').chat.send('bob', 'from carol');

        expect((await kit.peer('carol').to('bob').chat.history()).map(e => e.text)).toEqual(['from carol']);
        expect((await kit.peer('alice').to('bob').chat.history()).map(e => e.text)).toEqual(['from alice']);
        await expect(kit.peer('alice').to('bob').chat.clearHistory()).rejects.toBeInstanceOf(AccessDenied);
        expect((await kit.peer('bob').chat.history('alice')).length).toBe(1);
    });

    it('an unregistered caller cannot post', async () => {
        await using kit = await startSwitchboard({ peers: ['bob'] });
        const { PeerClient } = await import('../../peer/internal');
        const { RpcWebSocketClientAdapter } = await import('@deepkit/rpc');
        const WebSocket = (await import('ws')).default;
        const anonymous = new PeerClient(new RpcWebSocketClientAdapter(kit.url, WebSocket as any));
        try {
            const { ChatApi } = await import('../../shared');
            await expect(anonymous.peer('bob').controller<any>(ChatApi.path).receive(new ChatMessage('x', 'hi'))).rejects.toBeInstanceOf(NotRegistered);
        } finally {
            await anonymous.disconnect();
        }
    });

    it('to an offline peer: queued, then delivered when the broker reports it back', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        const alice = kit.peer('alice');
        const gone = wentOffline(alice, 'bob');
        await kit.peer('bob').close();
        await gone;

        const queued = await alice.chat.send('bob', 'while you were out');
        expect(queued.status).toBe('queued');
        expect((await alice.outbox.pending('bob')).length).toBe(1);

        const delivered = statusOf(alice, queued.id, 'delivered');
        const bob = await kit.addPeer('bob');
        await delivered;
        // (bob's copy is in its history, whether it arrived before or after bob's connect resolved)
        expect((await bob.chat.history('alice')).map(e => e.text)).toEqual(['while you were out']);
        expect(await alice.outbox.pending('bob')).toEqual([]);
    });

    it('queued messages survive a restart of the sender', async () => {
        const directory = mkdtempSync(join(tmpdir(), 'switchboard-chat-'));
        try {
            await using kit = await startSwitchboard({ peers: ['watcher'] });
            const storage = join(directory, 'alice.sqlite');
            const first = await kit.addPeer({ id: 'alice', storage });
            expect((await first.chat.send('bob', 'sent before my restart')).status).toBe('queued');
            await first.close();

            const bob = await kit.addPeer('bob');
            const arrived = firstValueFrom(bob.chat.updates$.pipe(filter(e => e.direction === 'in')));
            let delivered!: Promise<unknown>;
            const restarted = await kit.addPeer({ id: 'alice', storage }, peer => {
                delivered = collect(peer.chat.updates$, 1, entry => entry.direction === 'out' && entry.status === 'delivered');
            });
            expect(await arrived).toMatchObject({ peerId: 'alice', text: 'sent before my restart' });
            // The status changes right after bob answers; wait for it on the restarted peer.
            await delivered;
            expect((await restarted.chat.history('bob'))[0]?.status).toBe('delivered');
        } finally {
            rmSync(directory, { recursive: true, force: true });
        }
    });

    it('groups: members are notified, a send fans out and counts sent / queued / failed', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob', 'carol'] });
        const alice = kit.peer('alice');
        const gone = wentOffline(alice, 'carol');
        await kit.peer('carol').close();
        await gone;

        const bobJoined = firstValueFrom(kit.peer('bob').chat.groups$);
        const group = await alice.chat.createGroup('team', ['bob', 'carol', 'nobody']);
        expect(await bobJoined).toMatchObject({ id: group.id, name: 'team', owner: 'alice', members: ['alice', 'bob', 'carol', 'nobody'] });

        const result = await alice.chat.sendToGroup(group.id, 'hi team');
        expect({ sent: result.sent, queued: result.queued, failed: result.failed }).toEqual({ sent: 1, queued: 2, failed: 0 });
        expect(result.recipients.map(r => [r.peerId, r.status])).toEqual([['bob', 'delivered'], ['carol', 'queued'], ['nobody', 'queued']]);
        expect((await kit.peer('bob').chat.history('alice')).map(e => [e.text, e.groupId])).toEqual([['hi team', group.id]]);

        // carol comes back: first the membership, then the message, in order.
        let arrived!: Promise<unknown>;
        const carol = await kit.addPeer('carol', peer => { arrived = firstValueFrom(peer.chat.updates$.pipe(filter(e => e.text === 'hi team'))); });
        await arrived;
        expect((await carol.chat.groups()).map(g => g.id)).toEqual([group.id]);
    });

    it('a group send is one multicast frame: online members have it at once, an offline one when back', async () => {
        const directory = mkdtempSync(join(tmpdir(), 'switchboard-chat-'));
        // frank keeps what he stored (the group) across his absence. Sealing off: sealed copies are one box per member
        // and go through the outbox (tests/sealing); one frame for all is the unsealed path.
        const frankOptions = { id: 'frank', storage: join(directory, 'frank.sqlite'), sealing: false as const };
        await using cleanup = { [Symbol.asyncDispose]: async () => rmSync(directory, { recursive: true, force: true }) };
        const unsealed = (id: string) => ({ id, sealing: false as const });
        await using kit = await startSwitchboard({ peers: [unsealed('alice'), unsealed('bob'), unsealed('carol'), unsealed('dave'), unsealed('erin'), frankOptions] });
        const alice = kit.peer('alice');
        const group = await alice.chat.createGroup('team', ['bob', 'carol', 'dave', 'erin', 'frank']);
        // frank knows the group and has nothing queued at alice: the multicast names him and the broker finds him offline.
        const gone = wentOffline(alice, 'frank');
        await kit.peer('frank').close();
        await gone;

        const multicasts = jest.spyOn(peerInternals(alice).client, 'multicast');
        const calls = jest.spyOn(alice, 'invoke');
        const result = await alice.chat.sendToGroup(group.id, 'hi all');

        expect(multicasts).toHaveBeenCalledTimes(1);
        expect(multicasts.mock.calls[0][0]).toEqual(['bob', 'carol', 'dave', 'erin', 'frank']);
        // No online member got a call of its own; the outbox tried frank's entry once (he is offline).
        expect(calls.mock.calls.filter(([, , method]) => method === 'receive').map(([target]) => target)).toEqual(['frank']);
        expect({ sent: result.sent, queued: result.queued, failed: result.failed }).toEqual({ sent: 4, queued: 1, failed: 0 });
        expect(result.recipients.map(r => [r.peerId, r.status])).toEqual([['bob', 'delivered'], ['carol', 'delivered'], ['dave', 'delivered'], ['erin', 'delivered'], ['frank', 'queued']]);
        for (const member of ['bob', 'carol', 'dave', 'erin']) {
            expect((await kit.peer(member).chat.history('alice')).map(e => [e.peerId, e.text, e.groupId])).toEqual([['alice', 'hi all', group.id]]);
            expect((await alice.chat.history(member)).map(e => e.status)).toEqual(['delivered']);
        }
        expect((await alice.chat.history('frank')).map(e => e.status)).toEqual(['queued']);
        expect((await alice.outbox.pending('frank')).length).toBe(1);

        const { id } = (await alice.chat.history('frank'))[0];
        const delivered = statusOf(alice, id, 'delivered');
        let arrived!: Promise<ChatEntry>;
        await kit.addPeer(frankOptions, peer => { arrived = firstValueFrom(peer.chat.updates$.pipe(filter(e => e.direction === 'in'))); });
        expect(await arrived).toMatchObject({ id, peerId: 'alice', text: 'hi all', groupId: group.id });
        await delivered;
        expect(multicasts).toHaveBeenCalledTimes(1);
    });

    it('a member with an older message still queued gets the group message after it, through the outbox', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob', 'carol'] });
        const alice = kit.peer('alice');
        const bob = kit.peer('bob');
        const group = await alice.chat.createGroup('team', ['bob', 'carol']);
        const arrivals: string[] = [];
        bob.chat.updates$.pipe(filter(e => e.direction === 'in')).subscribe(e => arrivals.push(e.text));

        // bob takes the older message only when the test says so: until then alice's outbox holds it in bob's queue.
        const receive = bob.chat.receive.bind(bob.chat);
        let parked!: () => void;
        const isParked = new Promise<void>(resolve => parked = resolve);
        let unpark!: () => void;
        const unparked = new Promise<void>(resolve => unpark = resolve);
        jest.spyOn(bob.chat, 'receive').mockImplementationOnce(async (from, message) => {
            parked();
            await unparked;
            return receive(from, message);
        });
        const older = alice.chat.send('bob', 'older');
        await isParked;

        const carolHasIt = firstValueFrom(kit.peer('carol').chat.updates$.pipe(filter(e => e.text === 'to the group')));
        const fanOut = alice.chat.sendToGroup(group.id, 'to the group');
        await carolHasIt;
        expect(arrivals).toEqual([]);
        unpark();

        expect((await older).status).toBe('delivered');
        const result = await fanOut;
        expect(result.recipients.map(r => [r.peerId, r.status])).toEqual([['bob', 'delivered'], ['carol', 'delivered']]);
        expect(arrivals).toEqual(['older', 'to the group']);
    });

    it('a group message from a non-member is refused', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob', 'mallory'] });
        const group = await kit.peer('alice').chat.createGroup('team', ['bob']);
        const error = await kit.peer('mallory').to('bob').chat.receive(new ChatMessage('m-x', 'let me in', new Date, group.id)).catch(e => e);
        expect(error).toBeInstanceOf(AccessDenied);
        expect(error.reason).toBe('not-a-member');
    });
});
