import { RpcServer, RpcServerCreateConnection, RpcServerListener, RpcServerOptions } from '@deepkit/framework';
import { WebSocket, WebSocketServer } from 'ws';
import { LoggerInterface } from '@deepkit/logger';
import { BrokerConfig } from './config';

/**
 * Deepkit's WebSocket RPC server, with two changes: the socket-level size cap sits well above the broker's own
 * limit (so a large message gets a typed PayloadTooLarge from the connection instead of a dropped socket), and
 * close() ends every open socket, which an embedded broker in a test needs.
 */
export class BrokerWebSocketServer extends RpcServer {
    protected sockets = new Map<WebSocket, { close(): void }>();

    constructor(protected config: BrokerConfig, protected logger: LoggerInterface) {
        super();
    }

    start(options: RpcServerOptions, createRpcConnection: RpcServerCreateConnection): RpcServerListener {
        const maxPayload = Math.max(this.config.maxPayloadBytes * 2, this.config.maxPayloadBytes + 1024 * 1024);
        const server = new WebSocketServer({ server: options.server, maxPayload });

        server.on('connection', (socket, request) => {
            const connection = createRpcConnection({
                writeBinary: message => socket.send(message),
                close: () => socket.close(),
                bufferedAmount: () => socket.bufferedAmount,
                clientAddress: () => request.socket.remoteAddress ?? '',
            }, request as any);
            this.sockets.set(socket, connection);

            socket.on('message', (message: Buffer) => {
                // One misbehaving connection must not take the broker (and every other peer) down.
                try {
                    connection.feed(message);
                } catch (error) {
                    this.logger.error('Closing a connection after an error while reading its message', error);
                    connection.close();
                    socket.terminate();
                }
            });
            socket.on('error', () => connection.close());
            socket.on('close', () => {
                this.sockets.delete(socket);
                connection.close();
            });
        });

        return {
            close: () => {
                // Close connections synchronously, so the broker releases peers before it stops its services.
                for (const [socket, connection] of this.sockets) {
                    connection.close();
                    socket.terminate();
                }
                this.sockets.clear();
                server.close();
            },
        };
    }
}
