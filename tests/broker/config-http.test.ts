import { api, echoOf, Resources } from '../helpers';
import { ConfigError, startBroker } from '../../server';

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

    it('whoami tells a client what the broker knows of it', async () => {
        const broker = await resources.broker({ callTimeoutMs: 1234 });
        const bob = await resources.servingPeer(broker.url, 'bob');
        expect(await api(bob.client).whoami()).toMatchObject({
            peerId: 'bob', session: 'anonymous', authenticated: false, authMode: 'open', callTimeoutMs: 1234,
        });
    });
});
