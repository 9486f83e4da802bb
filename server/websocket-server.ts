import { RpcServer, RpcServerCreateConnection, RpcServerListener, RpcServerOptions } from '@deepkit/framework';
import { RpcKernelBaseConnection } from '@deepkit/rpc';
import { ServerOptions, WebSocket, WebSocketServer } from 'ws';
import { LoggerInterface } from '@deepkit/logger';
import { BrokerConfig } from './config';
import { BrokerConnection, CloseCode, ReasonedTransport } from './connection';
import { BrokerStats } from './stats';
import { ConnectionLimits } from './transport/connection-limits';
import { Heartbeat } from './transport/heartbeat';
import { fitsOutgoingBuffer, outgoingBufferLimit, requestFits, SlowReaderWatch } from './transport/outgoing-buffer';
import { OutgoingFrames, encodeDrain } from '@switchboard/protocol/internal';

/**
 * How long a socket the broker closes may take to answer the close frame. ws waits 30 s by default; a client that
 * does not read (slow consumer, frozen, half-open) never answers and would hold its unsent buffer that long.
 */
const CLOSE_HANDSHAKE_MS = 5_000;

/** The WebSocket protocol allows 123 bytes of close reason. */
const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Deepkit's WebSocket RPC server, with the limits a public broker needs:
 * - the socket-level size cap sits well above the broker's own limit, so a large message gets a typed
 *   PayloadTooLarge from the connection instead of a dropped socket;
 * - each connection's unsent bytes are bounded: a request that would overflow them is refused to its sender
 *   (ReceiverBusy, `hasRoomFor`), and a client that still does not read `slowConsumerMs` later is closed as a slow
 *   consumer instead of growing the broker's memory; so is one that overflows on what cannot be refused (replies,
 *   the broker's own frames). Senders are not paused: pausing one sender for a slow target would stall its other
 *   calls and its pongs, and two peers waiting on each other's drain would deadlock;
 * - a socket must send its first message within `handshakeTimeoutMs`, and one address may hold only
 *   `maxConnectionsPerAddress` sockets (`maxConnections` in total);
 * - every socket is pinged each `pingIntervalMs`; one that stops answering is closed and its peer ID released;
 * - frames written in the same turn of the event loop leave as one WebSocket message (OutgoingFrames);
 * - close() ends every open socket, which an embedded broker in a test needs.
 * Each close tells the client why (WebSocket close code and reason) and leaves one 'closed' row in the audit trail.
 */
export class BrokerWebSocketServer extends RpcServer {
    protected sockets = new Map<WebSocket, RpcKernelBaseConnection | undefined>();
    /** Set by drain(): new connections are refused, and `emptied` runs once the last socket is gone. */
    protected draining = false;
    protected emptied?: () => void;

    constructor(protected config: BrokerConfig, protected logger: LoggerInterface, protected stats: BrokerStats) {
        super();
    }

    /**
     * Nothing here needs runtime types; with them, each closure made for a connection carried its own type array
     * (about 0.35 KiB per connection).
     * @reflection never
     */
    override start(options: RpcServerOptions, createRpcConnection: RpcServerCreateConnection): RpcServerListener {
        const { config } = this;
        const maxPayload = Math.max(config.maxPayloadBytes * 2, config.maxPayloadBytes + 1024 * 1024);
        // @types/ws does not know `closeTimeout` yet; a ws without it waits its default 30 s.
        const server = new WebSocketServer({ server: options.server, maxPayload, closeTimeout: CLOSE_HANDSHAKE_MS } as ServerOptions);
        const limits = new ConnectionLimits(config.maxConnectionsPerAddress, config.maxConnections);
        const heartbeat = new Heartbeat(config.pingIntervalMs);
        const bufferLimit = outgoingBufferLimit(config);
        heartbeat.start();

        server.on('connection', (socket, request) => {
            // ws emits protocol errors (bad frames, oversized messages) as events; unheard, they would end the process.
            socket.on('error', () => undefined);
            if (this.draining) {
                this.sockets.set(socket, undefined);
                socket.once('close', () => this.forget(socket));
                socket.close(GOING_AWAY, 'this broker is draining (about to stop): connect to another broker');
                return;
            }
            const address = request.socket.remoteAddress ?? '';
            const admission = limits.admit(address);
            if (!admission.admitted) {
                // Accepted only to say why: an HTTP refusal of the upgrade reaches no browser code.
                this.stats.refused('TOO_MANY_CONNECTIONS');
                this.sockets.set(socket, undefined);
                socket.once('close', () => this.forget(socket));
                socket.close(CloseCode.tooManyConnections, admission.reason);
                return;
            }

            let connection: RpcKernelBaseConnection | undefined;
            /** Set once the socket is to be closed: nothing more is queued for it. */
            let ending = false;
            const end = (code: number, reason: string) => {
                if (connection instanceof BrokerConnection) return connection.closeFor(code, reason);
                socket.close(code, limitReason(reason));
                connection?.close();
            };
            const outgoing = new OutgoingFrames(message => {
                if (!ending && socket.readyState === WebSocket.OPEN) socket.send(message);
            }, (header, body) => {
                // One WebSocket message in two fragments: the body is not copied per receiver.
                if (ending || socket.readyState !== WebSocket.OPEN) return;
                socket.send(header, { binary: true, fin: false });
                socket.send(body, { binary: true, fin: true });
            });
            const unsentBytes = () => socket.bufferedAmount + outgoing.pendingBytes;
            const slowReader = new SlowReaderWatch(config.slowConsumerMs, bufferLimit, unsentBytes, unsent => {
                if (ending || socket.readyState !== WebSocket.OPEN) return;
                ending = true;
                outgoing.clear();
                end(CloseCode.slowConsumer, `slow consumer: ${unsent} bytes unsent`);
            });
            const transport: ReasonedTransport = {
                writeBinary: message => {
                    if (ending || socket.readyState !== WebSocket.OPEN) return;
                    const unsent = socket.bufferedAmount + outgoing.pendingBytes;
                    if (fitsOutgoingBuffer(unsent, message.byteLength, bufferLimit)) return outgoing.push(message);
                    ending = true;
                    outgoing.clear();
                    // Not from inside this write: it may run in the middle of another connection's routing.
                    queueMicrotask(() => end(CloseCode.slowConsumer, `slow consumer: ${unsent} bytes unsent`));
                },
                close: () => {
                    outgoing.flush();
                    socket.close();
                },
                closeWith: (code, reason) => {
                    // What was written before the reason (the error answering the last frame) still goes out.
                    outgoing.flush();
                    ending = true;
                    socket.close(code, limitReason(reason));
                },
                writeParts: (header, body) => {
                    if (ending || socket.readyState !== WebSocket.OPEN) return;
                    const size = header.byteLength + body.byteLength;
                    const unsent = unsentBytes();
                    if (fitsOutgoingBuffer(unsent, size, bufferLimit)) return outgoing.pushParts(header, body);
                    ending = true;
                    outgoing.clear();
                    queueMicrotask(() => end(CloseCode.slowConsumer, `slow consumer: ${unsent} bytes unsent`));
                },
                hasRoomFor: bytes => {
                    if (ending || socket.readyState !== WebSocket.OPEN) return true;
                    if (requestFits(unsentBytes(), bytes, bufferLimit)) return true;
                    slowReader.refused();
                    return false;
                },
                bufferedAmount: () => socket.bufferedAmount,
                clientAddress: () => address,
            };
            let created: RpcKernelBaseConnection;
            try {
                created = connection = createRpcConnection(transport, request as any);
            } catch (error) {
                // Deepkit refuses new connections while the server shuts down.
                admission.release();
                socket.terminate();
                return;
            }
            this.sockets.set(socket, created);

            const handshakeDeadline = setTimeout(() => end(CloseCode.idle, `no message within ${config.handshakeTimeoutMs} ms of connecting`), config.handshakeTimeoutMs);
            handshakeDeadline.unref();
            heartbeat.watch(socket, () => end(CloseCode.unresponsive, `unresponsive: no answer to two pings ${config.pingIntervalMs} ms apart`));

            socket.on('message', (message: Buffer) => {
                clearTimeout(handshakeDeadline);
                // One misbehaving connection must not take the broker (and every other peer) down.
                try {
                    created.feed(message);
                } catch (error) {
                    this.logger.error('Closing a connection after an error while reading its message', error);
                    created.close();
                    socket.terminate();
                }
            });
            socket.on('close', () => {
                clearTimeout(handshakeDeadline);
                slowReader.stop();
                this.forget(socket);
                // Before the connection's own close, so a client that sees its peer go offline may reconnect at once.
                admission.release();
                created.close();
            });
        });

        return {
            close: () => {
                heartbeat.stop();
                // Close connections synchronously, so the broker releases peers before it stops its services.
                for (const [socket, connection] of this.sockets) {
                    connection?.close();
                    socket.terminate();
                }
                this.sockets.clear();
                this.emptied?.();
                server.close();
            },
        };
    }

    /** Open sockets. */
    get connectionCount(): number {
        return this.sockets.size;
    }

    /**
     * Refuses new connections and tells every SDK client (those that sent Hello) to move to another broker
     * (SwitchboardFrame.Drain). Resolves once every socket is gone; the caller bounds the wait.
     */
    drain(): Promise<void> {
        this.draining = true;
        const notice = encodeDrain();
        for (const [socket, connection] of this.sockets) {
            if (connection instanceof BrokerConnection && connection.typedErrors && socket.readyState === WebSocket.OPEN) socket.send(notice);
        }
        if (!this.sockets.size) return Promise.resolve();
        return new Promise(resolve => this.emptied = resolve);
    }

    protected forget(socket: WebSocket): void {
        this.sockets.delete(socket);
        if (!this.sockets.size) this.emptied?.();
    }
}

/** The WebSocket close code of a server going down (RFC 6455): what a refused connection hears while draining. */
const GOING_AWAY = 1001;

function limitReason(reason: string): string {
    while (Buffer.byteLength(reason) > MAX_CLOSE_REASON_BYTES) reason = reason.slice(0, -1);
    return reason;
}
