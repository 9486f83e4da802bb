import { api, collect, echoOf, Resources } from '../helpers';
import { AuditLog } from '../../server/registry/audit-log';

describe('the audit trail', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('records registration, routed calls with controller and action, denials, deregistration and disconnects', async () => {
        const broker = await resources.broker();
        const bob = await resources.servingPeer(broker.url, 'bob');
        const alice = await resources.servingPeer(broker.url, 'alice');
        const offline = collect(await api(alice.client).presence(), 1, e => e.peerId === 'bob' && e.kind === 'offline');

        await echoOf(alice.client, 'bob').echo('audited');
        await echoOf(alice.client, 'nobody').echo('lost').catch(() => undefined);
        await api(resources.peerClient(broker.url)).register('bob').catch(() => undefined);
        await api(alice.client).deregister();
        await bob.client.disconnect();
        await offline;

        const events = await broker.app.get(AuditLog).query();
        const summary = events.map(e => [e.kind, e.peerId ?? null, e.target ?? null, e.controller ? `${e.controller}.${e.action}` : null, e.reason ?? null]);
        expect(summary).toEqual([
            ['register', 'bob', null, null, null],
            ['register', 'alice', null, null, null],
            ['call', 'alice', 'bob', 'test/echo.echo', null],
            ['call', 'alice', 'nobody', 'test/echo.echo', 'PEER_NOT_FOUND'],
            ['denied', null, 'bob', null, 'PEER_ID_TAKEN'],
            ['deregister', 'alice', null, null, null],
            ['disconnect', 'bob', null, null, null],
        ]);
    });
});
