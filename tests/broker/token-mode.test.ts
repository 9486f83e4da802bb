import { api, echoOf, Resources } from '../helpers';
import { AccessDenied, AuthenticationFailed, PeerIdTaken } from '../../shared';
import { TokenStore } from '../../server';
import { AuditLog } from '../../server/registry/audit-log';

describe('token mode', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    async function tokenBroker() {
        const broker = await resources.broker({ auth: 'token' });
        const tokens = broker.app.get(TokenStore);
        return {
            broker,
            alice: await tokens.create('alice-app', { peerIds: ['alice'], allowTargets: ['bob', 'team-*'] }),
            bob: await tokens.create('bob-app', { peerIds: ['bob'], denyTargets: ['carol'] }),
            carol: await tokens.create('carol-app', { peerIds: ['carol'] }),
            teamA: await tokens.create('team-a', { peerIds: ['team-*'] }),
            teamB: await tokens.create('team-b', { peerIds: ['team-*'] }),
            tokens,
        };
    }

    it('an unknown or revoked token is refused with AuthenticationFailed', async () => {
        const { broker, tokens, carol } = await tokenBroker();
        await expect(resources.peerClient(broker.url, 'sbt_not-a-token').connect()).rejects.toBeInstanceOf(AuthenticationFailed);
        await tokens.revoke('carol-app');
        await expect(resources.peerClient(broker.url, carol).connect()).rejects.toBeInstanceOf(AuthenticationFailed);
        expect((await broker.app.get(AuditLog).query({ kind: 'auth-failed' })).length).toBe(2);
    });

    it('registering without a token, or an ID the token does not own, is AccessDenied', async () => {
        const { broker, alice } = await tokenBroker();
        const anonymous = resources.peerClient(broker.url);
        const error = await api(anonymous).register('alice').catch(e => e);
        expect(error).toBeInstanceOf(AccessDenied);
        expect(error.reason).toBe('not-authenticated');

        const withToken = resources.peerClient(broker.url, alice);
        expect(await api(withToken).register('bob').catch(e => e.reason)).toBe('id-not-granted');
        expect((await api(withToken).register('alice')).peerId).toBe('alice');
    });

    it('ID theft: another token with an overlapping grant gets PeerIdTaken; the same token takes over its own', async () => {
        const { broker, teamA, teamB } = await tokenBroker();
        const first = await resources.servingPeer(broker.url, 'team-1', { token: teamA });
        expect(first.registration.reclaimSecret).toBeUndefined();

        await expect(api(resources.peerClient(broker.url, teamB)).register('team-1')).rejects.toBeInstanceOf(PeerIdTaken);
        const again = await resources.servingPeer(broker.url, 'team-1', { token: teamA });
        expect(again.registration.tookOver).toBe(true);
    });

    it('enforces the send policy: allow list and deny list', async () => {
        const { broker, alice, bob, carol } = await tokenBroker();
        const bobPeer = await resources.servingPeer(broker.url, 'bob', { token: bob });
        await resources.servingPeer(broker.url, 'carol', { token: carol });
        const alicePeer = await resources.servingPeer(broker.url, 'alice', { token: alice });

        expect(await echoOf(alicePeer.client, 'bob').echo('allowed')).toBe('allowed');
        expect(await echoOf(alicePeer.client, 'carol').echo('no').catch(e => e.reason)).toBe('send-not-allowed');
        expect(await echoOf(bobPeer.client, 'alice').echo('yes')).toBe('yes');
        expect(await echoOf(bobPeer.client, 'carol').echo('no').catch(e => e.reason)).toBe('send-denied');

        const denied = await broker.app.get(AuditLog).query({ kind: 'denied' });
        expect(denied.map(d => [d.peerId, d.target, d.reason])).toEqual(expect.arrayContaining([
            ['alice', 'carol', 'ACCESS_DENIED'], ['bob', 'carol', 'ACCESS_DENIED'],
        ]));
    });

    it('an unauthenticated connection may ask whoami but not list peers', async () => {
        const { broker } = await tokenBroker();
        const anonymous = resources.peerClient(broker.url);
        expect(await api(anonymous).whoami()).toMatchObject({ authMode: 'token', authenticated: false, session: 'anonymous' });
        expect(await api(anonymous).listPeers().catch(e => e.reason)).toBe('not-authenticated');
    });
});
