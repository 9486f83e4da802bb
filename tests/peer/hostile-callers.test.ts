import { createRpcMessage, createRpcMessagePeer, readBinaryRpcMessage, rpcClientId, RpcMessage, RpcTypes, serializeBinaryRpcMessage } from '@deepkit/rpc';
import { deserializeBSONWithoutOptimiser, serializeBSONWithoutOptimiser } from '@deepkit/bson';
import { typeOf } from '@deepkit/type';
import { randomBytes } from 'crypto';
import { AddressInfo } from 'net';
import { WebSocket, WebSocketServer } from 'ws';
import { SwitchboardFrame } from '../../shared/wire';
import { Run, runProgram } from '../processes';

const PEER = 'bob';

/** A peer frame with any bytes as its body, written by hand (Deepkit's writer only writes well-typed bodies). */
function peerFrame(id: number, type: number, source: Uint8Array, body?: Uint8Array, peerId = PEER): Uint8Array {
    const header = serializeBinaryRpcMessage(createRpcMessagePeer(id, type, source, peerId));
    const frame = new Uint8Array(header.length + (body?.length ?? 0));
    frame.set(header);
    if (body) frame.set(body, header.length);
    new DataView(frame.buffer).setUint32(0, frame.length, true);
    return frame;
}

function identity(source: Uint8Array, body: object): Uint8Array {
    return peerFrame(0, SwitchboardFrame.CallerIdentity, source, serializeBSONWithoutOptimiser(body));
}

function action(id: number, source: Uint8Array, method: string): Uint8Array {
    return peerFrame(id, RpcTypes.Action, source, serializeBSONWithoutOptimiser({ controller: 'test/probe', method, args: [] }));
}

/**
 * A malicious broker: a real WebSocket server that completes Deepkit's ClientId handshake with the peer and then
 * writes whatever the test wants, byte for byte. An SDK must survive a hostile or compromised broker too.
 */
class HostileBroker {
    protected socket?: WebSocket;
    protected pending = new Map<number, { resolve: (message: RpcMessage) => void, reject: (error: Error) => void }>();
    protected nextId = 1000;
    readonly connected: Promise<void>;

    constructor(readonly server: WebSocketServer, protected peerOutput: () => string) {
        this.connected = new Promise(resolve => server.on('connection', socket => {
            this.socket = socket;
            socket.on('message', (data: Buffer) => {
                const message = readBinaryRpcMessage(new Uint8Array(data));
                if (message.type === RpcTypes.ClientId) {
                    socket.send(serializeBinaryRpcMessage(createRpcMessage<rpcClientId>(message.id, RpcTypes.ClientIdResponse, { id: randomBytes(16) })));
                    return resolve();
                }
                this.pending.get(message.id)?.resolve(message);
            });
            socket.on('close', () => {
                for (const call of this.pending.values()) call.reject(new Error(`The peer closed its connection. Its output:\n${this.peerOutput()}`));
            });
        }));
    }

    get url(): string {
        return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    }

    send(...frames: Uint8Array[]): void {
        for (const frame of frames) this.socket!.send(frame);
    }

    /** Calls a ProbeController action as `source`; resolves with its result, once the peer answered. */
    call(source: Uint8Array, method: string): Promise<any> {
        const id = this.nextId++;
        const answered = new Promise<RpcMessage>((resolve, reject) => this.pending.set(id, { resolve, reject }));
        this.send(action(id, source, method));
        return answered.then(message => {
            this.pending.delete(id);
            if (message.type === RpcTypes.Error) throw message.getError();
            return (deserializeBSONWithoutOptimiser(message.getBuffer(), message.bodyOffset) as { v: unknown }).v;
        });
    }
}

describe('a peer fed hostile frames (by a malicious broker) keeps running and serving', () => {
    // No broker of ours here, so no test kit: only a server socket and a child process to clean up.
    let cleanups: (() => unknown)[] = [];
    jest.setTimeout(60000);
    afterEach(async () => {
        for (const cleanup of cleanups.reverse()) await cleanup();
        cleanups = [];
    });

    /** The peer runs in a process of its own: a frame that escapes into its WebSocket listener would end it. */
    async function start(maxCallers = 10_000): Promise<{ broker: HostileBroker, peer: Run }> {
        const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
        cleanups.push(() => new Promise(resolve => {
            for (const client of server.clients) client.terminate();
            server.close(resolve);
        }));
        await new Promise(resolve => server.once('listening', resolve));
        let peer!: Run;
        const broker = new HostileBroker(server, () => peer.output());
        peer = runProgram('tests/peer/hostile-broker-peer.ts', [broker.url, String(maxCallers)]);
        cleanups.push(() => {
            if (peer.child.exitCode === null) peer.child.kill('SIGKILL');
        });
        await broker.connected;
        await peer.waitFor(/peer connected/);
        return { broker, peer };
    }

    it('CallerIdentity frames with invalid bodies are ignored and counted; the verified identity stands', async () => {
        const { broker, peer } = await start();
        const alice = randomBytes(16);
        broker.send(identity(alice, { peerId: 'alice', session: 'anonymous' }));
        expect(await broker.call(alice, 'whoCalls')).toEqual({ peerId: 'alice', session: 'anonymous' });

        const hostile = [
            identity(alice, { peerId: '../../admin', session: 'anonymous' }),
            identity(alice, { peerId: 'a'.repeat(65), session: 'anonymous' }),
            identity(alice, { peerId: 'carol', session: 's'.repeat(10_000) }),
            identity(alice, { peerId: 42, session: 'anonymous' }),
            identity(alice, { peerId: { $gt: '' }, session: 'anonymous' }),
            identity(alice, { peerId: 'carol' }),
            identity(alice, { peerId: 'carol', session: ['anonymous'] }),
            peerFrame(0, SwitchboardFrame.CallerIdentity, alice),
        ];
        broker.send(...hostile);

        // Frames are handled in order: once this answers, every hostile frame before it was handled.
        expect(await broker.call(alice, 'whoCalls')).toEqual({ peerId: 'alice', session: 'anonymous' });
        const state = await broker.call(alice, 'state');
        expect(state.dropped).toEqual({ 'invalid-caller-identity': hostile.length });
        expect(peer.child.exitCode).toBeNull();
    });

    it('malformed frames are dropped, not thrown or looped on: sizes that lie, unterminated peer IDs, broken bodies, unknown types, stray replies, composites, chunks', async () => {
        const { broker, peer } = await start();
        const alice = randomBytes(16);
        broker.send(identity(alice, { peerId: 'alice', session: 'anonymous' }));
        expect(await broker.call(alice, 'whoCalls')).toEqual({ peerId: 'alice', session: 'anonymous' });

        const valid = action(7, alice, 'whoCalls');
        const withSize = (frame: Uint8Array, size: number) => {
            const copy = frame.slice();
            new DataView(copy.buffer).setUint32(0, size, true);
            return copy;
        };
        // The header of a peer frame without the NUL that ends the peer ID.
        const unterminated = valid.slice(0, 26 + PEER.length);
        new DataView(unterminated.buffer).setUint32(0, unterminated.length, true);
        const unknownRoute = valid.slice();
        unknownRoute[9] = 7;
        const compositeFlag = valid.slice();
        compositeFlag[26 + PEER.length + 1] = 2;
        const lyingBody = peerFrame(8, RpcTypes.Action, alice, Uint8Array.from([0xff, 0xff, 0xff, 0x7f, 2, 0x61, 0]));
        const lyingComposite = peerFrame(9, RpcTypes.Action, alice, Uint8Array.from([0xff, 0xff, 0, 0, RpcTypes.Action, 5, 0, 0, 0, 0]));
        lyingComposite[26 + PEER.length + 1] = 1;
        const chunkOnPeerRoute = peerFrame(10, RpcTypes.Chunk, alice, serializeBSONWithoutOptimiser({ seq: 0, total: 2 ** 31, v: new Uint8Array(8) }));
        const malformed = [
            withSize(valid, 0),
            withSize(valid, valid.length + 1000),
            withSize(valid, valid.length - 1),
            Uint8Array.from([1, 2, 3]),
            unterminated,
            unknownRoute,
            compositeFlag,
            lyingBody,
            lyingComposite,
            chunkOnPeerRoute,
            // BSON documents of the right size whose element type does not exist.
            peerFrame(0, SwitchboardFrame.CallerIdentity, alice, Uint8Array.from([12, 0, 0, 0, 0x99, 0x61, 0, 1, 2, 3, 4, 0])),
            peerFrame(11, RpcTypes.Action, alice, Uint8Array.from([12, 0, 0, 0, 0x99, 0x61, 0, 1, 2, 3, 4, 0])),
        ];
        broker.send(...malformed);

        // Well-framed, but still wrong: answered with an error or ignored, never thrown out of the handler.
        const unknownType = peerFrame(12, 200, alice, serializeBSONWithoutOptimiser({ anything: 1 }));
        const strayReply = serializeBinaryRpcMessage(createRpcMessage(4242, RpcTypes.ResponseActionSimple, { v: 1 }, undefined, typeOf<{ v: number }>()));
        const entity = serializeBinaryRpcMessage(createRpcMessage(0, RpcTypes.Entity, { nonsense: true }, undefined, typeOf<{ nonsense: boolean }>()));
        const serverRouted = serializeBinaryRpcMessage(createRpcMessage(13, RpcTypes.Action, { controller: 'x', method: 'y' }, 1 as any, typeOf<{ controller: string, method: string }>()));
        const compositeAction = peerFrame(14, RpcTypes.Action, alice, Uint8Array.from([5, 0, 0, 0, RpcTypes.Action, 5, 0, 0, 0, 0]));
        compositeAction[26 + PEER.length + 1] = 1;
        broker.send(unknownType, strayReply, entity, serverRouted, compositeAction);

        expect(await broker.call(alice, 'whoCalls')).toEqual({ peerId: 'alice', session: 'anonymous' });
        const state = await broker.call(alice, 'state');
        // A message may hold several frames: the one whose size field is a byte short is dropped as a cut frame and
        // then as one byte of garbage after it.
        expect(state.dropped['malformed-frame']).toBe(malformed.length);
        expect(state.dropped['misrouted-chunk']).toBe(1);
        // The Entity frame: Deepkit's entity state reads any Entity frame as a composite one and throws.
        expect(state.dropped['handler-error']).toBe(1);
        expect(peer.child.exitCode).toBeNull();
    });

    it('a flood of distinct callers keeps at most maxCallers of them; the most recent keep their identity', async () => {
        const { broker } = await start(50);
        const sources = Array.from({ length: 500 }, () => randomBytes(16));
        sources.forEach((source, i) => broker.send(identity(source, { peerId: `flood-${i}`, session: 'anonymous' })));

        const last = sources[sources.length - 1];
        expect(await broker.call(last, 'whoCalls')).toEqual({ peerId: 'flood-499', session: 'anonymous' });
        const state = await broker.call(last, 'state');
        expect(state.callers).toBe(50);
        expect(state.callersEvicted).toBe(450);
        // Forgotten callers fail closed: no identity, so actions that need a caller ID refuse them.
        expect(await broker.call(sources[0], 'whoCalls')).toEqual({ peerId: null, session: '' });
    });
});
