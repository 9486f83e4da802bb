import { api, echoOf, Resources } from '../helpers';
import { ConfigError, startBroker, TokenStore } from '../../server';

describe('configuration and HTTP endpoints', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('an invalid setting stops start-up with a message that names it', async () => {
        const error = await startBroker({ port: 70000, database: ':memory:' }).catch(e => e);
        expect(error).toBeInstanceOf(ConfigError);
        expect(error.setting).toBe('port');
        expect(error.message).toContain('SWITCHBOARD_PORT');
        expect(error.message).toContain('--port');

        const auth = await startBroker({ auth: 'tokn' as any, port: 0, database: ':memory:' }).catch(e => e);
        expect(auth.message).toMatch(/"auth".*SWITCHBOARD_AUTH/);
        const payload = await startBroker({ maxPayloadBytes: 10, port: 0, database: ':memory:' }).catch(e => e);
        expect(payload.message).toContain('SWITCHBOARD_MAX_PAYLOAD_BYTES');
    });

    it('/health, /ready and /status answer; status counts routed calls and refusals', async () => {
        const broker = await resources.broker();
        expect(await (await fetch(`${broker.httpUrl}/health`)).json()).toEqual({ status: 'ok' });
        const ready = await fetch(`${broker.httpUrl}/ready`);
        expect(ready.status).toBe(200);
        expect(await ready.json()).toEqual({ status: 'ready' });

        await resources.servingPeer(broker.url, 'bob');
        const alice = resources.peerClient(broker.url);
        await echoOf(alice, 'bob').echo('one');
        await echoOf(alice, 'ghost').echo('two').catch(() => undefined);

        const status = await (await fetch(`${broker.httpUrl}/status`)).json();
        expect(status).toMatchObject({ status: 'ok', peersOnline: 1, peersKnown: 1, callsRouted: 1, denials: 1, refusals: { PEER_NOT_FOUND: 1 } });
        expect(status.uptimeSeconds).toBeGreaterThanOrEqual(0);
    });

    it('/metrics: Prometheus text with peers online, calls by outcome, refusals by reason, latency; no peer IDs as labels', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob-the-peer');
        const alice = resources.peerClient(broker.url);
        await echoOf(alice, 'bob-the-peer').echo('one');
        await echoOf(alice, 'ghost-peer').echo('two').catch(() => undefined);
        await expect(echoOf(alice, 'bob-the-peer').echo('')).rejects.toThrow();

        const response = await fetch(`${broker.httpUrl}/metrics`);
        expect(response.headers.get('content-type')).toContain('text/plain');
        const text = await response.text();
        expect(text).toMatch(/^switchboard_peers_online 1$/m);
        expect(text).toMatch(/^switchboard_registrations_total 1$/m);
        expect(text).toMatch(/^switchboard_calls_routed_total\{outcome="delivered"\} 2$/m);
        expect(text).toMatch(/^switchboard_calls_routed_total\{outcome="undeliverable"\} 1$/m);
        expect(text).toMatch(/^switchboard_calls_routed_total\{outcome="denied"\} 0$/m);
        expect(text).toMatch(/^switchboard_calls_routed_total\{outcome="error_reply"\} 1$/m);
        expect(text).toMatch(/^switchboard_refusals_total\{reason="PEER_NOT_FOUND"\} 1$/m);
        expect(Number(/^switchboard_call_latency_seconds_count (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(2);
        expect(text).not.toContain('bob-the-peer');
        expect(text).not.toContain('ghost-peer');
    });

    it('token mode: /status and /metrics need an admin token as bearer; /health and /ready stay public', async () => {
        const broker = await resources.broker({ auth: 'token' });
        const tokens = broker.app.get(TokenStore);
        const admin = await tokens.create('ops', { peerIds: [], admin: true });
        const peer = await tokens.create('alice-app', { peerIds: ['alice'] });
        const get = (path: string, token?: string) => fetch(`${broker.httpUrl}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

        expect((await get('/health')).status).toBe(200);
        expect((await get('/ready')).status).toBe(200);
        for (const path of ['/status', '/metrics']) {
            const anonymous = await get(path);
            expect(anonymous.status).toBe(401);
            expect(anonymous.headers.get('www-authenticate')).toContain('Bearer');
            expect(await anonymous.json()).toMatchObject({ error: 'NOT_AUTHENTICATED' });
            expect((await get(path, 'sbt_not-a-token')).status).toBe(401);
            const notAdmin = await get(path, peer);
            expect(notAdmin.status).toBe(403);
            expect(await notAdmin.json()).toMatchObject({ error: 'ACCESS_DENIED' });
            expect((await get(path, admin)).status).toBe(200);
        }
        expect(await (await get('/status', admin)).json()).toMatchObject({ status: 'ok', peersOnline: 0 });
        expect(await (await get('/metrics', admin)).text()).toMatch(/^switchboard_peers_online 0$/m);
        // A revoked admin token is refused at once.
        await tokens.revoke('ops');
        expect((await get('/status', admin)).status).toBe(401);
    });

    it('whoami tells a client what the broker knows of it', async () => {
        const broker = await resources.broker({ callTimeoutMs: 1234 });
        const bob = await resources.servingPeer(broker.url, 'bob');
        expect(await api(bob.client).whoami()).toMatchObject({
            peerId: 'bob', session: 'anonymous', authenticated: false, authMode: 'open', callTimeoutMs: 1234,
        });
    });
});
