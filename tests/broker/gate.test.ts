import { createRpcMessageSourceDest, readBinaryRpcMessage, RpcTypes, RpcWebSocketClientAdapter } from '@deepkit/rpc';
import { typeOf } from '@deepkit/type';
import WebSocket from 'ws';
import { api, echoOf, EchoController, eventually, heldCalls, Resources } from '../helpers';
import { AccessDenied, PayloadTooLarge, RateLimited } from '../../shared';
import { PeerClient } from '../../peer/internal';
import { AuditLog } from '../../server/registry/audit-log';

/** A client that writes someone else's connection id as the source of its peer messages. */
class ForgingClient extends PeerClient {
    forgedSource?: Uint8Array;

    override getId(): Uint8Array {
        return this.forgedSource ?? super.getId();
    }
}

describe('the security gate on routed frames', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('the receiver sees the verified caller ID; an unregistered caller has none', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        const alice = await resources.servingPeer(broker.url, 'alice');
        const anonymous = resources.peerClient(broker.url);

        expect(await echoOf(alice.client, 'bob').whoCalls()).toEqual({ peerId: 'alice', session: 'anonymous' });
        expect(await echoOf(anonymous, 'bob').whoCalls()).toEqual({ peerId: undefined, session: 'anonymous' });
    });

    it('a caller that registers later is re-introduced under its new ID', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        const late = resources.peerClient(broker.url);
        expect((await echoOf(late, 'bob').whoCalls()).peerId).toBeUndefined();
        await api(late).register('late');
        expect((await echoOf(late, 'bob').whoCalls()).peerId).toBe('late');
    });

    it('refuses a peer message whose source is not the sender’s own connection', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        const alice = await resources.servingPeer(broker.url, 'alice');
        const aliceConnection = (await api(alice.client).whoami()).connectionId;

        const mallory = resources.add(new ForgingClient(new RpcWebSocketClientAdapter(broker.url, WebSocket as any), PeerClient.createPeerKernel()), c => c.disconnect());
        await mallory.connect();
        mallory.forgedSource = Buffer.from(aliceConnection, 'hex');

        const error = await echoOf(mallory, 'bob').whoCalls().catch(e => e);
        expect(error).toBeInstanceOf(AccessDenied);
        expect(error.reason).toBe('forged-source');
        const denials = await broker.app.get(AuditLog).query({ kind: 'denied' });
        expect(denials.map(d => d.reason)).toContain('ACCESS_DENIED');
    });

    it('refuses replies to requests the destination never sent (no injected results)', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'carol');
        const alice = resources.peerClient(broker.url);
        const aliceConnection = Buffer.from((await api(alice).whoami()).connectionId, 'hex');
        EchoController.held = [];
        const pending = echoOf(alice, 'carol').hold();
        await heldCalls(1);

        const mallory = await resources.servingPeer(broker.url, 'mallory');
        // Message ids are small sequential numbers: try them all with a forged "result".
        for (let id = 0; id < 64; id++) {
            mallory.client.transporter.send(createRpcMessageSourceDest(id, RpcTypes.ResponseActionSimple, mallory.client.getId(), aliceConnection, { v: 'forged' }, typeOf<{ v: string }>()));
        }
        const status = async () => (await (await fetch(`${broker.httpUrl}/status`)).json()).refusals.UNSOLICITED_REPLY ?? 0;
        await eventually(async () => await status() === 64);

        EchoController.held[0]();
        expect(await pending).toBe('released');
    });

    it('refuses an oversized message with PayloadTooLarge; the peer keeps working', async () => {
        const broker = await resources.broker({ maxPayloadBytes: 64 * 1024 });
        await resources.servingPeer(broker.url, 'bob');
        const alice = resources.peerClient(broker.url);

        await expect(echoOf(alice, 'bob').echo('x'.repeat(70 * 1024))).rejects.toBeInstanceOf(PayloadTooLarge);
        // Above Deepkit's chunk size the client splits the message; the broker refuses it at the first chunk.
        await expect(echoOf(alice, 'bob').echo('x'.repeat(300 * 1024))).rejects.toBeInstanceOf(PayloadTooLarge);
        expect(await echoOf(alice, 'bob').echo('small')).toBe('small');
    });

    it('refuses a flood beyond the configured rate with RateLimited; accepted calls all complete', async () => {
        const broker = await resources.broker({ messagesPerSecond: 20 });
        await resources.servingPeer(broker.url, 'bob');
        const alice = resources.peerClient(broker.url);
        const bystander = resources.peerClient(broker.url);

        const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => echoOf(alice, 'bob').echo(`m${i}`)));
        const limited = results.filter(r => r.status === 'rejected' && r.reason instanceof RateLimited).length;
        const delivered = results.filter(r => r.status === 'fulfilled');
        expect(limited).toBeGreaterThan(0);
        expect(delivered.length + limited).toBe(100);
        for (const result of delivered) expect((result as PromiseFulfilledResult<string>).value).toMatch(/^m\d+$/);
        expect(await echoOf(bystander, 'bob').echo('unaffected')).toBe('unaffected');
    });

    it('answers a malformed frame with MalformedMessage and stays up', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        const socket = resources.add(new WebSocket(broker.url), s => s.close());
        await new Promise(resolve => socket.once('open', resolve));
        const answer = new Promise<Buffer>(resolve => socket.once('message', resolve));
        const garbage = Buffer.alloc(32, 0xff);
        garbage.writeUInt32LE(999_999, 0);
        socket.send(garbage);

        const error = readBinaryRpcMessage(new Uint8Array(await answer)).getError();
        // A raw client said nothing about knowing Switchboard's errors: the code leads a plain error's message.
        expect(error.message).toMatch(/^MALFORMED_MESSAGE: /);
        expect(await echoOf(resources.peerClient(broker.url), 'bob').echo('fine')).toBe('fine');
    });

    it('invalid arguments are refused by the receiver (runtime types exist) with an error naming the field', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        await expect(echoOf(resources.peerClient(broker.url), 'bob').echo('')).rejects.toThrow(/text\(minLength\)/);
        await expect(api(resources.peerClient(broker.url)).register('no spaces please')).rejects.toThrow(/peerId\(pattern\)/);
    });
});
