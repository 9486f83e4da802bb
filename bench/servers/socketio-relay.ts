import { createServer } from 'http';
import { Server } from 'socket.io';
import { serveBenchmark } from './process-protocol';

/** What many would pick instead: a Socket.IO relay, each call acknowledged end to end. */
const http = createServer();
const io = new Server(http, { maxHttpBufferSize: 128 * 1024 * 1024 });
const sockets = new Map<string, string>();
io.on('connection', socket => {
    const id = String(socket.handshake.query.id ?? '');
    sockets.set(id, socket.id);
    socket.on('call', async (target: string, payload: Buffer, ack: (reply: unknown) => void) => {
        const to = sockets.get(target);
        if (!to) return ack({ error: 'not found' });
        try {
            ack(await io.to(to).timeout(10_000).emitWithAck('call', payload));
        } catch (error) {
            ack({ error: String(error) });
        }
    });
    socket.on('disconnect', () => sockets.delete(id));
});
http.listen(0, '127.0.0.1', () => serveBenchmark((http.address() as { port: number }).port, () => io.close()));
