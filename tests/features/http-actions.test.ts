import { rpc, RpcControllerAccess, RpcKernelBaseConnection, RpcKernelSecurity, Session } from '@deepkit/rpc';
import { MinLength, Positive } from '@deepkit/type';
import { firstValueFrom, Subject } from 'rxjs';
import { take, toArray } from 'rxjs/operators';
import { CallerContext, Peer } from '../../peer';
import { PeerSecurity } from '../../peer/internal';
import { TokenStore } from '../../server';
import { AuditLog } from '../../server/registry/audit-log';
import { AccessDenied, HTTP_SESSION_PREFIX, HttpActionsApi, httpVisible, NotFound } from '../../shared';
import { eventually, Resources } from '../helpers';
import { sees, usesCluster } from '../cluster/cluster-fixture';
import { describeWithNats } from '../cluster/nats-server';

/** Resolves the calls parked by `OrdersController.wait`. */
const parked$ = new Subject<() => void>();

@rpc.controller('shop/orders')
class OrdersController {
    constructor(protected caller: CallerContext) {
    }

    @httpVisible()
    place(item: string & MinLength<1>, quantity: number & Positive, due?: Date): { item: string, quantity: number, dueYear?: number, session: string, peerId?: string } {
        return { item, quantity, dueYear: due?.getUTCFullYear(), session: this.caller.session, peerId: this.caller.peerId };
    }

    @httpVisible()
    async wait(): Promise<string> {
        return new Promise(resolve => parked$.next(() => resolve('released')));
    }

    /** Callable by peers, not over HTTP. */
    @rpc.action()
    refund(item: string): string {
        return `refunded ${item}`;
    }
}

/** An app's own security class: HTTP callers may not place orders. */
class NoOrdersOverHttp extends PeerSecurity {
    override async hasControllerAccess(session: Session, access: RpcControllerAccess, connection: RpcKernelBaseConnection): Promise<boolean> {
        if (access.actionName === 'place' && this.caller?.session.startsWith(HTTP_SESSION_PREFIX)) throw this.transformError(new AccessDenied('No orders over HTTP.', 'app-rule'));
        return super.hasControllerAccess(session, access, connection);
    }
}

function post(baseUrl: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function answer(response: Promise<Response>): Promise<{ status: number, body: any }> {
    const settled = await response;
    return { status: settled.status, body: await settled.json() };
}

describe('actions over HTTP', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    async function shop(config: Parameters<Resources['broker']>[0] = {}, token?: string) {
        const broker = await resources.broker(config);
        const peer = resources.add(await Peer.connect({ url: broker.url, id: 'shop', token, expose: [[OrdersController, 'shop/orders']] }), p => p.close());
        return { broker, peer };
    }

    it('a marked action answers a POST with a JSON array of arguments, typed and as the HTTP caller', async () => {
        const { broker } = await shop();
        const { status, body } = await answer(post(broker.httpUrl, '/peers/shop/shop/orders/place', ['tea', 2, '2027-03-01T00:00:00.000Z']));
        expect(status).toBe(200);
        // The date arrived as a Date (its type on the peer), and the peer saw a verified HTTP caller without peer ID.
        expect(body).toEqual({ item: 'tea', quantity: 2, dueYear: 2027, session: 'http:anonymous', peerId: null });
    });

    it('an unmarked action is refused over HTTP, by the target peer itself', async () => {
        const { broker, peer } = await shop();
        expect(await answer(post(broker.httpUrl, '/peers/shop/shop/orders/refund', ['tea']))).toMatchObject({ status: 404, body: { code: 'NOT_FOUND', reason: 'http-action' } });
        // The peer's gateway refuses whoever asks, not only what the broker forwards.
        const other = resources.add(await Peer.connect({ url: broker.url, id: 'other' }), p => p.close());
        await expect(other.to('shop').controller<HttpActionsApi>(HttpActionsApi.path).call('shop/orders', 'refund', '["tea"]')).rejects.toBeInstanceOf(NotFound);
        // A peer still calls it over RPC.
        expect(await other.to(peer.id).controller<OrdersController>('shop/orders').refund('tea')).toBe('refunded tea');
    });

    it("the target peer's security class judges the action itself", async () => {
        const broker = await resources.broker();
        resources.add(await Peer.connect({ url: broker.url, id: 'shop', providers: [{ provide: RpcKernelSecurity, useClass: NoOrdersOverHttp, scope: 'rpc' }], expose: [[OrdersController, 'shop/orders']] }), p => p.close());
        expect(await answer(post(broker.httpUrl, '/peers/shop/shop/orders/place', ['tea', 1]))).toMatchObject({ status: 403, body: { code: 'ACCESS_DENIED', reason: 'app-rule' } });
    });

    it('each failure has its status and code', async () => {
        const { broker } = await shop({ maxPayloadBytes: 1024 });
        const base = broker.httpUrl;
        const invalid = await answer(post(base, '/peers/shop/shop/orders/place', ['tea', -1]));
        expect(invalid).toMatchObject({ status: 400, body: { code: 'VALIDATION_ERROR', errors: [{ path: 'quantity', code: 'positive' }] } });
        expect(await answer(post(base, '/peers/shop/shop/orders/place', [42, 1]))).toMatchObject({ status: 400, body: { code: 'VALIDATION_ERROR', errors: [{ path: 'item' }] } });
        expect(await answer(post(base, '/peers/shop/shop/orders/place', '{"not":"an array"}'))).toMatchObject({ status: 400, body: { code: 'MALFORMED_MESSAGE' } });
        expect(await answer(post(base, '/peers/shop/shop/orders/place', ['tea', 1, 'x', 'too many']))).toMatchObject({ status: 400, body: { code: 'VALIDATION_ERROR' } });
        expect(await answer(post(base, '/peers/nobody/shop/orders/place', ['tea', 1]))).toMatchObject({ status: 404, body: { code: 'PEER_NOT_FOUND' } });
        expect(await answer(post(base, '/peers/shop/shop/orders/nothing', []))).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
        expect(await answer(post(base, '/peers/shop/shop/orders/place', ['x'.repeat(2000), 1]))).toMatchObject({ status: 413, body: { code: 'PAYLOAD_TOO_LARGE' } });

        const timedOut = post(base, '/peers/shop/shop/orders/wait', [], { 'x-timeout-ms': '200' });
        const release = await firstValueFrom(parked$);
        expect(await answer(timedOut)).toMatchObject({ status: 504, body: { code: 'TIMEOUT' } });
        release();

        // A peer whose connection drops with calls unanswered: 503 at once for each, not at the timeout.
        const { client: gone } = await resources.servingPeer(broker.url, 'gone');
        gone.peerKernel!.registerController(OrdersController, 'shop/orders');
        const parked = firstValueFrom(parked$.pipe(take(2), toArray()));
        const abandoned = [0, 1].map(() => answer(post(base, '/peers/gone/shop/orders/wait', [], { 'x-timeout-ms': '600000' })));
        await parked;
        await gone.disconnect();
        for (const call of abandoned) expect(await call).toMatchObject({ status: 503, body: { code: 'PEER_OFFLINE' } });
        expect(await answer(post(base, '/peers/gone/shop/orders/place', ['tea', 1]))).toMatchObject({ status: 503, body: { code: 'PEER_OFFLINE' } });
    });

    it('token mode: no token is 401, a send policy that excludes the target 403, a granted token 200', async () => {
        const broker = await resources.broker({ auth: 'token' });
        const tokens = broker.app.get(TokenStore);
        const shopToken = await tokens.create('shop-app', { peerIds: ['shop'] });
        const client = await tokens.create('web-client', { peerIds: [], allowTargets: ['shop'] });
        const elsewhere = await tokens.create('web-elsewhere', { peerIds: [], allowTargets: ['billing'] });
        resources.add(await Peer.connect({ url: broker.url, id: 'shop', token: shopToken, expose: [[OrdersController, 'shop/orders']] }), p => p.close());
        const path = '/peers/shop/shop/orders/place';

        expect(await answer(post(broker.httpUrl, path, ['tea', 1]))).toMatchObject({ status: 401, body: { code: 'ACCESS_DENIED', reason: 'not-authenticated' } });
        expect(await answer(post(broker.httpUrl, path, ['tea', 1], { authorization: 'Bearer sbt_not-a-token' }))).toMatchObject({ status: 401, body: { code: 'AUTHENTICATION_FAILED' } });
        expect(await answer(post(broker.httpUrl, path, ['tea', 1], { authorization: `Bearer ${elsewhere}` }))).toMatchObject({ status: 403, body: { code: 'ACCESS_DENIED', reason: 'send-not-allowed' } });
        expect(await answer(post(broker.httpUrl, path, ['tea', 1], { authorization: `Bearer ${client}` }))).toMatchObject({ status: 200, body: { item: 'tea', session: 'http:web-client' } });
    });

    it('the audit trail has a row for each call and each refusal', async () => {
        const { broker } = await shop();
        expect((await post(broker.httpUrl, '/peers/shop/shop/orders/place', ['tea', 1])).status).toBe(200);
        expect((await post(broker.httpUrl, '/peers/shop/shop/orders/refund', ['tea'])).status).toBe(404);
        const calls = await broker.app.get(AuditLog).query({ kind: 'call' });
        expect(calls).toEqual(expect.arrayContaining([
            expect.objectContaining({ session: 'http:anonymous', target: 'shop', controller: 'shop/orders', action: 'place' }),
            expect.objectContaining({ session: 'http:anonymous', target: 'shop', controller: 'shop/orders', action: 'refund', reason: 'NOT_FOUND' }),
        ]));
    });

    it('GET /peers/<id>/http-actions is an OpenAPI document of the marked actions with their argument types', async () => {
        const { broker } = await shop();
        const response = await fetch(`${broker.httpUrl}/peers/shop/http-actions`);
        expect(response.status).toBe(200);
        const document = await response.json();
        expect(document.openapi).toBe('3.1.0');
        expect(Object.keys(document.paths).sort()).toEqual(['/peers/shop/shop/orders/place', '/peers/shop/shop/orders/wait']);
        const place = document.paths['/peers/shop/shop/orders/place'].post;
        expect(place.requestBody.content['application/json'].schema).toMatchObject({
            type: 'array', minItems: 2, maxItems: 3,
            prefixItems: [{ type: 'string', title: 'item' }, { type: 'number', title: 'quantity' }, { type: 'string', format: 'date-time', title: 'due' }],
        });
        expect(place.responses[200].content['application/json'].schema.properties.item).toEqual({ type: 'string' });
        expect(await answer(fetch(`${broker.httpUrl}/peers/nobody/http-actions`))).toMatchObject({ status: 404, body: { code: 'PEER_NOT_FOUND' } });
    });
});

const clusterResources = new Resources();

describeWithNats('actions over HTTP in a cluster', () => {
    const setup = usesCluster(clusterResources);

    it('a call entering one broker reaches a peer on another', async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        clusterResources.add(await Peer.connect({ url: two.url, id: 'shop', expose: [[OrdersController, 'shop/orders']] }), p => p.close());
        await sees(one, 'shop');
        expect(await answer(post(one.httpUrl, '/peers/shop/shop/orders/place', ['tea', 3]))).toMatchObject({ status: 200, body: { item: 'tea', quantity: 3, session: 'http:anonymous' } });
        expect(await answer(post(one.httpUrl, '/peers/shop/shop/orders/refund', ['tea']))).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
        await eventually(async () => (await one.app.get(AuditLog).query({ kind: 'call' })).some(row => row.session === 'http:anonymous' && row.action === 'place'));
    });
});
