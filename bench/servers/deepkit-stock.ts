import { rpc, RpcKernel, RpcKernelSecurity, Session } from '@deepkit/rpc';
import { WebSocketServer } from 'ws';
import { serveBenchmark } from './process-protocol';

/** Stock Deepkit 1.0.19: a plain RpcKernel, its default peer exchange, and a security class that allows P2P. */
class Permissive extends RpcKernelSecurity {
    override async isAllowedToRegisterAsPeer(session: Session, peerId: string): Promise<boolean> {
        return true;
    }

    override async isAllowedToSendToPeer(session: Session, peerId: string): Promise<boolean> {
        return true;
    }
}

/** For the client→server reference: one hop, no routing. */
@rpc.controller('bench/echo')
class EchoController {
    @rpc.action()
    echo(payload: Uint8Array): Uint8Array {
        return payload;
    }
}

const kernel = new RpcKernel([{ provide: RpcKernelSecurity, useClass: Permissive, scope: 'rpc' }]);
kernel.registerController(EchoController, 'bench/echo');
const server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 128 * 1024 * 1024 });
server.on('connection', socket => {
    const connection = kernel.createConnection({
        writeBinary: message => socket.send(message),
        close: () => socket.close(),
    });
    socket.on('message', (message: Buffer) => connection.feed(message));
    socket.on('close', () => connection.close());
});
server.on('listening', () => serveBenchmark((server.address() as { port: number }).port, () => server.close()));
