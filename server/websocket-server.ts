import { RpcServer, RpcServerCreateConnection, RpcServerListener, RpcServerOptions } from '@deepkit/framework';
import { RpcKernelBaseConnection } from '@deepkit/rpc';
import { ServerOptions, WebSocket, WebSocketServer } from 'ws';
import { LoggerInterface } from '@deepkit/logger';
import { BrokerConfig } from './config';
import { BrokerConnection, CloseCode } from './connection';
import { BrokerStats } from './stats';
import { ConnectionLimits } from './transport/connection-limits';
import { Heartbeat } from './transport/heartbeat';
import { outgoingBufferLimit } from './transport/outgoing-buffer';
import { BrokerSocket, BrokerSocketSettings } from './transport/broker-socket';
import { encodeDrain } from '@switchboard/protocol/internal';

/**
 * How long a socket the broker closes may take to answer the close frame. ws waits 30 s by default; a client that
 * does not read (slow consumer, frozen, half-open) never answers and would hold its unsent buffer that long.
 */
const CLOSE_HANDSHAKE_MS = 5_000;

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
     * (about 0.35 KiB per connection). Each accepted socket is a BrokerSocket.
     * @reflection never
     */
    override start(options: RpcServerOptions, createRpcConnection: RpcServerCreateConnection): RpcServerListener {
        const { config } = this;
        const maxPayload = Math.max(config.maxPayloadBytes * 2, config.maxPayloadBytes + 1024 * 1024);
        // @types/ws does not know `closeTimeout` yet; a ws without it waits its default 30 s.
        const server = new WebSocketServer({ server: options.server, maxPayload, closeTimeout: CLOSE_HANDSHAKE_MS } as ServerOptions);
        const limits = new ConnectionLimits(config.maxConnectionsPerAddress, config.maxConnections);
        const heartbeat = new Heartbeat(config.pingIntervalMs);
        heartbeat.start();
        const settings: BrokerSocketSettings = {
            handshakeTimeoutMs: config.handshakeTimeoutMs, pingIntervalMs: config.pingIntervalMs, slowConsumerMs: config.slowConsumerMs,
            bufferLimit: outgoingBufferLimit(config), logger: this.logger, heartbeat, forget: socket => this.forget(socket),
        };

        server.on('connection', (socket, request) => {
            // ws emits protocol errors (bad frames, oversized messages) as events; unheard, they would end the process.
            socket.on('error', ignore);
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

            const accepted = new BrokerSocket(socket, address, admission.release, settings);
            let created: RpcKernelBaseConnection;
            try {
                created = createRpcConnection(accepted, request as any);
            } catch (error) {
                // Deepkit refuses new connections while the server shuts down.
                admission.release();
                socket.terminate();
                return;
            }
            this.sockets.set(socket, created);
            accepted.open(created);
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

/** One listener for every socket's 'error' event. */
function ignore(): void {
}
