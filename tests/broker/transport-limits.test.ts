import { connect } from 'net';
import { RpcWebSocketClientAdapter } from '@deepkit/rpc';
import WebSocket from 'ws';
import { api, collect, echoOf, EchoController, Resources } from '../helpers';
import { PeerOffline, ReceiverBusy } from '../../shared';
import { PeerClient } from '../../peer/internal';
import { RunningBroker } from '../../server';
import { AuditLog } from '../../server/registry/audit-log';
import { CloseCode } from '../../server/connection';
import { addressGroup } from '../../server/transport/connection-limits';

describe('the broker’s transport limits', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    /**
     * A registered peer serving EchoController, with its WebSocket at hand (the SDK keeps it to itself): pausing it plays
     * a client that stops reading, as a frozen process or a dead network would.
     */
    async function peerWithSocket(url: string, peerId: string): Promise<{ client: PeerClient, socket: WebSocket }> {
        let socket!: WebSocket;
        class Captured extends WebSocket {
            constructor(address: string) {
                super(address);
                socket = this;
            }
        }
        const client = resources.add(new PeerClient(new RpcWebSocketClientAdapter(url, Captured as any), PeerClient.createPeerKernel()), c => c.disconnect());
        client.servedPeerId = (await api(client).register(peerId)).peerId;
        client.peerKernel!.registerController(EchoController, EchoController.path);
        return { client, socket };
    }

    function rawSocket(url: string): WebSocket {
        const socket = new WebSocket(url);
        socket.on('error', () => undefined);
        return resources.add(socket, s => s.terminate());
    }

    function closeOf(socket: WebSocket): Promise<{ code: number, reason: string }> {
        return new Promise(resolve => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    }

    async function closedRows(broker: RunningBroker) {
        return broker.app.get(AuditLog).query({ kind: 'closed' });
    }

    it('refuses calls to a peer whose unsent bytes reach maxBufferedBytes (ReceiverBusy), and closes it when it still does not read slowConsumerMs later; its callers are told', async () => {
        const maxBufferedBytes = 1024 * 1024;
        // Each refusal counts against the sender: raised here, so the sender outlives the burst.
        const broker = await resources.broker({ maxPayloadBytes: 128 * 1024, maxBufferedBytes, messagesPerSecond: 100_000, bytesPerSecond: 64 * 1024 * 1024, slowConsumerMs: 300, maxProtocolViolations: 10_000 });
        const sleepy = await peerWithSocket(broker.url, 'sleepy');
        const alice = await resources.servingPeer(broker.url, 'alice');
        const echo = echoOf(alice.client, 'sleepy');
        expect(await echo.echo('awake')).toBe('awake');

        sleepy.socket.pause();
        // Far more than the socket buffers of the operating system and the bound together: only the bound can stop it.
        const text = 'x'.repeat(60 * 1024);
        const calls = Array.from({ length: 600 }, () => echo.echo(text));
        // The first call to fail is one the broker had no room for: refused to the sender, the receiver not closed.
        const failure = await Promise.race(calls.map(call => call.then(() => undefined, error => error)));
        expect(failure).toBeInstanceOf(ReceiverBusy);
        // The calls it took and the peer never answered fail once it is closed for not reading.
        const failures = (await Promise.allSettled(calls)).map(result => result.status === 'rejected' ? result.reason : undefined);
        expect(failures.some(error => error instanceof PeerOffline)).toBe(true);

        const [row] = await closedRows(broker);
        expect(row).toMatchObject({ peerId: 'sleepy', reason: expect.stringMatching(/^slow consumer: \d+ bytes unsent$/) });
        const unsent = Number(/(\d+) bytes/.exec(row.reason!)![1]);
        expect(unsent).toBeLessThanOrEqual(maxBufferedBytes);
    });

    it('closes a WebSocket that sends nothing within handshakeTimeoutMs, and a TCP socket that never sends its request', async () => {
        const broker = await resources.broker({ handshakeTimeoutMs: 300 });
        const talking = resources.peerClient(broker.url);
        await api(talking).whoami();

        const silent = closeOf(rawSocket(broker.url));
        const tcp = resources.add(connect(broker.port, '127.0.0.1'), s => s.destroy());
        tcp.on('data', () => undefined);
        const tcpClosed = new Promise(resolve => tcp.once('close', resolve));

        expect(await silent).toEqual({ code: CloseCode.idle, reason: 'no message within 300 ms of connecting' });
        await tcpClosed;
        // The deadline is for the first message only: a client that spoke is still served.
        expect((await api(talking).whoami()).connectionId).toBeTruthy();
    });

    it('refuses connections past maxConnectionsPerAddress with a reason, and accepts again when one closes', async () => {
        const broker = await resources.broker({ maxConnectionsPerAddress: 3 });
        const watcher = resources.peerClient(broker.url);
        const offline = collect(await api(watcher).presence(), 1, event => event.peerId === 'one' && event.kind === 'offline');
        const one = await resources.servingPeer(broker.url, 'one');
        const third = rawSocket(broker.url);
        await new Promise(resolve => third.once('open', resolve));

        const refused = await closeOf(rawSocket(broker.url));
        expect(refused).toEqual({ code: CloseCode.tooManyConnections, reason: 'too many connections from your address (limit 3); close some and retry' });
        expect((await (await fetch(`${broker.httpUrl}/status`)).json()).refusals.TOO_MANY_CONNECTIONS).toBe(1);

        await one.client.disconnect();
        await offline;
        const next = resources.peerClient(broker.url);
        expect((await api(next).whoami()).connectionId).toBeTruthy();
    });

    it('counts an IPv6 client by its /64 (one host gets a whole /64) and an IPv4-mapped one as IPv4', () => {
        expect(addressGroup('2001:db8:1:2:aaaa::1')).toBe(addressGroup('2001:0db8:0001:0002:bbbb:cccc:dddd:eeee'));
        expect(addressGroup('2001:db8:1:2::1')).not.toBe(addressGroup('2001:db8:1:3::1'));
        expect(addressGroup('::ffff:192.0.2.7')).toBe('192.0.2.7');
        expect(addressGroup('fe80::1%eth0')).toBe(addressGroup('fe80::2'));
    });

    it('closes a client that stops answering pings and releases its peer ID; an idle client that answers stays', async () => {
        const broker = await resources.broker({ pingIntervalMs: 150 });
        const watcher = await peerWithSocket(broker.url, 'watcher');
        const offline = collect(await api(watcher.client).presence(), 1, event => event.peerId === 'frozen' && event.kind === 'offline');
        const frozen = await peerWithSocket(broker.url, 'frozen');

        frozen.socket.pause();
        await offline;
        const [row] = await closedRows(broker);
        expect(row).toMatchObject({ peerId: 'frozen', reason: expect.stringMatching(/^unresponsive/) });
        await expect(echoOf(watcher.client, 'frozen').echo('hello')).rejects.toBeInstanceOf(PeerOffline);

        // The watcher said nothing since, but its WebSocket answered each ping by itself.
        await new Promise<void>(resolve => {
            let pings = 0;
            watcher.socket.on('ping', () => ++pings === 6 && resolve());
        });
        expect(watcher.socket.readyState).toBe(WebSocket.OPEN);
        expect((await api(watcher.client).whoami()).peerId).toBe('watcher');
    });
});
