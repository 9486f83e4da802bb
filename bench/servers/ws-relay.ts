import { WebSocket, WebSocketServer } from 'ws';
import { serveBenchmark } from './process-protocol';

/**
 * The Node floor: a two-hop relay over `ws` that forwards bytes without decoding them. A client connects with
 * `?id=<name>`; a frame is <target length u8><target><payload>, delivered as <source length u8><source><payload>.
 */
const clients = new Map<string, WebSocket>();
const server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 128 * 1024 * 1024 });
server.on('connection', (socket, request) => {
    const id = new URL(request.url ?? '/', 'http://relay').searchParams.get('id') ?? '';
    clients.set(id, socket);
    const source = Buffer.from(id);
    socket.on('message', (frame: Buffer) => {
        const target = frame.subarray(1, 1 + frame[0]).toString();
        const to = clients.get(target);
        if (!to) return;
        const out = Buffer.allocUnsafe(1 + source.length + frame.length - 1 - frame[0]);
        out[0] = source.length;
        source.copy(out, 1);
        frame.copy(out, 1 + source.length, 1 + frame[0]);
        to.send(out);
    });
    socket.on('close', () => clients.delete(id));
});
server.on('listening', () => serveBenchmark((server.address() as { port: number }).port, () => server.close()));
