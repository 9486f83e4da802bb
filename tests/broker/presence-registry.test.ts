import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { api, collect, Resources } from '../helpers';
import { AuditLog } from '../../server/registry/audit-log';
import { PeerNotFound } from '../../shared';

describe('presence and the registry', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('presence events arrive in order for connect, announce and disconnect', async () => {
        const broker = await resources.broker();
        const watcher = resources.peerClient(broker.url);
        const presence = await api(watcher).presence();
        const events = collect(presence, 4, event => event.peerId === 'bob');

        const bob = await resources.servingPeer(broker.url, 'bob');
        await api(bob.client).announce(['chat', 'files']);
        await api(bob.client).announce(['chat']);
        await bob.client.disconnect();

        const seen = await events;
        expect(seen.map(e => [e.kind, e.capabilities])).toEqual([
            ['online', []], ['capabilities', ['chat', 'files']], ['capabilities', ['chat']], ['offline', ['chat']],
        ]);
        const sequences = seen.map(e => e.sequence);
        expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    });

    it('a snapshot subscription first lists who is online now', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'early');
        const watcher = resources.peerClient(broker.url);
        const first = await collect(await api(watcher).presence(true), 1);
        expect(first[0]).toMatchObject({ kind: 'online', peerId: 'early' });
    });

    it('lists and finds peers by online state and capability', async () => {
        const broker = await resources.broker();
        const a = await resources.servingPeer(broker.url, 'a');
        await api(a.client).announce(['relay']);
        const b = await resources.servingPeer(broker.url, 'b');
        const bOffline = collect(await api(a.client).presence(), 1, e => e.peerId === 'b' && e.kind === 'offline');
        await b.client.disconnect();
        await bOffline;

        const client = resources.peerClient(broker.url);
        expect((await api(client).listPeers({ capability: 'relay' })).map(p => p.id)).toEqual(['a']);
        expect((await api(client).listPeers({ online: true })).map(p => p.id)).toEqual(['a']);
        expect((await api(client).listPeers()).map(p => p.id)).toEqual(['a', 'b']);
        expect(await api(client).getPeer('a')).toMatchObject({ id: 'a', online: true, capabilities: ['relay'] });
        await expect(api(client).getPeer('zz')).rejects.toBeInstanceOf(PeerNotFound);
    });

    it('the registry survives a broker restart on the same database file; everyone is offline until back', async () => {
        const directory = mkdtempSync(join(tmpdir(), 'switchboard-'));
        resources.add(directory, d => rmSync(d, { recursive: true, force: true }));
        const database = join(directory, 'registry.sqlite');

        const first = await resources.broker({ database });
        const bob = await resources.servingPeer(first.url, 'bob');
        await api(bob.client).announce(['chat']);
        const before = await api(bob.client).getPeer('bob');
        await first.close();

        const second = await resources.broker({ database });
        const client = resources.peerClient(second.url);
        const after = await api(client).getPeer('bob');
        expect(after).toMatchObject({ id: 'bob', online: false, capabilities: ['chat'] });
        expect(after.firstSeen.getTime()).toBe(before.firstSeen.getTime());
        expect(await api(client).listPeers({ online: true })).toEqual([]);
        // The audit trail is there too.
        expect((await second.app.get(AuditLog).query({ peerId: 'bob' })).map(e => e.kind)).toContain('register');
    });
});
