import { AddressInfo, connect, createServer, Server, Socket } from 'net';

/**
 * A TCP tap in front of a broker: every byte the broker sends to the peers connected through it is kept. Those
 * WebSocket frames are not masked (only client-to-server frames are) and the broker does not compress, so whatever a
 * payload carries in plaintext can be found in `received()`: what the broker forwards is what an operator could read.
 */
export class FrameTap {
    protected chunks: Buffer[] = [];
    protected sockets = new Set<Socket>();

    protected constructor(protected server: Server, readonly targetPort: number) {
        server.on('connection', client => {
            const upstream = connect(targetPort, '127.0.0.1');
            for (const socket of [client, upstream]) {
                this.sockets.add(socket);
                socket.on('error', () => undefined);
                socket.on('close', () => this.sockets.delete(socket));
            }
            client.on('data', data => upstream.write(data));
            upstream.on('data', data => {
                this.chunks.push(Buffer.from(data));
                client.write(data);
            });
            client.on('close', () => upstream.destroy());
            upstream.on('close', () => client.destroy());
        });
    }

    static async start(targetPort: number): Promise<FrameTap> {
        const server = createServer();
        await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
        return new FrameTap(server, targetPort);
    }

    get url(): string {
        return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    }

    /** Everything the broker sent through the tap so far. */
    received(): Buffer {
        return Buffer.concat(this.chunks);
    }

    /** Bytes seen so far; a test takes it after the traffic it looks at has arrived. */
    contains(text: string): boolean {
        return this.received().includes(Buffer.from(text, 'utf8'));
    }

    async close(): Promise<void> {
        for (const socket of this.sockets) socket.destroy();
        await new Promise(resolve => this.server.close(resolve));
    }
}
