import { AddressInfo, createServer, Server, Socket, connect } from 'net';

interface Direction {
    to: Socket;
    held: Buffer[];
    /** The sending side closed while frozen: the other side is closed on thaw. */
    closed: boolean;
}

/**
 * A TCP proxy in front of a broker, for network failures a test needs:
 * - `freeze()`: nothing passes, not even a close, and nothing is closed: a half-open connection (a NAT or proxy
 *   that dropped the flow silently). New connections are accepted and frozen too. `thaw()` lets everything held pass.
 * - `cut()`: every connection through it drops, and new ones are refused until `accept()`: a lost network.
 */
export class TcpProxy {
    protected sockets = new Set<Socket>();
    protected directions = new Set<Direction>();
    protected frozen = false;
    protected refusing = false;

    protected constructor(protected server: Server, readonly targetPort: number) {
        server.on('connection', socket => this.onConnection(socket));
    }

    static async start(targetPort: number): Promise<TcpProxy> {
        const server = createServer();
        await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
        return new TcpProxy(server, targetPort);
    }

    get port(): number {
        return (this.server.address() as AddressInfo).port;
    }

    get url(): string {
        return `ws://127.0.0.1:${this.port}`;
    }

    freeze(): void {
        this.frozen = true;
    }

    thaw(): void {
        this.frozen = false;
        for (const direction of this.directions) {
            for (const chunk of direction.held.splice(0)) if (!direction.to.destroyed) direction.to.write(chunk);
            if (direction.closed) {
                direction.to.destroy();
                this.directions.delete(direction);
            }
        }
    }

    cut(): void {
        this.refusing = true;
        for (const socket of this.sockets) socket.destroy();
    }

    accept(): void {
        this.refusing = false;
    }

    async close(): Promise<void> {
        for (const socket of this.sockets) socket.destroy();
        await new Promise(resolve => this.server.close(resolve));
    }

    protected onConnection(client: Socket): void {
        if (this.refusing) return void client.destroy();
        const upstream = connect(this.targetPort, '127.0.0.1');
        for (const socket of [client, upstream]) {
            this.sockets.add(socket);
            socket.on('error', () => undefined);
            socket.on('close', () => this.sockets.delete(socket));
        }
        this.forward(client, upstream);
        this.forward(upstream, client);
    }

    protected forward(from: Socket, to: Socket): void {
        const direction: Direction = { to, held: [], closed: false };
        this.directions.add(direction);
        from.on('data', chunk => {
            if (this.frozen) direction.held.push(chunk);
            else to.write(chunk);
        });
        from.on('close', () => {
            if (this.frozen) return void (direction.closed = true);
            to.destroy();
            this.directions.delete(direction);
        });
    }
}
