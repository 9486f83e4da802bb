import { rpc } from '@deepkit/rpc';
import { MinLength } from '@deepkit/type';
import { Subject } from 'rxjs';
import { CallerContext, Peer } from '../../peer';
import { startSwitchboard } from '../../testing/test-kit';
import { TokenStore } from '../../server';
import { AuditLog } from '../../server/registry/audit-log';
import { collect } from '../helpers';

/** What each receiving peer saw: the verified caller and the argument. */
const received = new Subject<{ receiver: string, caller?: string, text: string }>();

@rpc.controller('test/inbox')
class InboxController {
    constructor(protected caller: CallerContext, protected peer: Peer) {
    }

    @rpc.action()
    deliver(text: string & MinLength<1>): string {
        received.next({ receiver: this.peer.id, caller: this.caller.peerId, text });
        return `${this.peer.id} got ${text}`;
    }
}

describe('peer.broadcast: one frame from the sender, a copy for each target', () => {
    it('reports delivered, offline, not-found and denied targets; each receiver sees the verified caller; audit rows add up', async () => {
        await using kit = await startSwitchboard({ broker: { auth: 'token' } });
        const tokens = kit.broker.app.get(TokenStore);
        const token = async (name: string, grant: { denyTargets?: string[] } = {}) => tokens.create(name, { peerIds: [name], ...grant });
        const sender = await kit.addPeer({ id: 'sender', token: await token('sender', { denyTargets: ['secret'] }) });
        for (const id of ['bob', 'carol', 'secret']) await kit.addPeer({ id, token: await token(id), expose: [[InboxController, 'test/inbox']] });
        const dave = await kit.addPeer({ id: 'dave', token: await token('dave') });
        await sender.watchPresence(['dave']);
        const daveGone = collect(sender.presence$, 1, event => event.peerId === 'dave' && event.kind === 'offline');
        await dave.close();
        await daveGone;

        const deliveries = collect(received, 2);
        const result = await sender.broadcast(['bob', 'carol', 'dave', 'nobody', 'secret'], 'test/inbox', 'deliver', ['hello']);
        expect(result.outcomes).toEqual({ bob: 'delivered', carol: 'delivered', dave: 'offline', nobody: 'not-found', secret: 'denied' });
        expect(result.delivered).toBe(2);
        expect(result.failed).toBe(3);
        expect((await deliveries).sort((a, b) => a.receiver.localeCompare(b.receiver))).toEqual([
            { receiver: 'bob', caller: 'sender', text: 'hello' },
            { receiver: 'carol', caller: 'sender', text: 'hello' },
        ]);

        const audit = kit.broker.app.get(AuditLog);
        const calls = (await audit.query({ kind: 'call', peerId: 'sender' })).filter(row => !row.reason);
        expect(calls.reduce((sum, row) => sum + row.count, 0)).toBe(2);
        expect((await audit.query({ kind: 'denied', peerId: 'sender' })).map(row => [row.target, row.reason])).toContainEqual(['secret', 'ACCESS_DENIED']);
    });

    it('collects each delivered target’s answer, typed errors included', async () => {
        await using kit = await startSwitchboard({ peers: ['sender'] });
        for (const id of ['bob', 'carol']) await kit.addPeer({ id, expose: [[InboxController, 'test/inbox']] });
        const sender = kit.peer('sender');

        const result = await sender.broadcast<string>(['bob', 'carol', 'nobody'], 'test/inbox', 'deliver', ['hi'], { collectReplies: true });
        expect(result.replies).toEqual({ bob: { result: 'bob got hi' }, carol: { result: 'carol got hi' } });
        expect(result.outcomes.nobody).toBe('not-found');

        // An argument the action refuses: each receiver validates it as for any call.
        const invalid = await sender.broadcast(['bob'], 'test/inbox', 'deliver', [''], { collectReplies: true });
        expect(invalid.delivered).toBe(1);
        expect((invalid.replies!.bob as { error: Error }).error.name).toBe('ValidationError');
    });

    it('many targets in one call: the broker answers for every one of them', async () => {
        await using kit = await startSwitchboard({ peers: ['sender'] });
        const receivers = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8'];
        for (const id of receivers) await kit.addPeer({ id, expose: [[InboxController, 'test/inbox']] });
        const deliveries = collect(received, receivers.length * 10);
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => kit.peer('sender').broadcast(receivers, 'test/inbox', 'deliver', [`m${i}`])));
        expect(results.every(result => result.delivered === receivers.length)).toBe(true);
        const seen = await deliveries;
        for (const receiver of receivers) expect(seen.filter(d => d.receiver === receiver).map(d => d.text).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`).sort());
    });
});
