import { ChildProcess, execFileSync, spawn } from 'child_process';
import { readFileSync } from 'fs';
import { join, resolve as resolvePath } from 'path';
import { rpc, RpcClient, RpcWebSocketClientAdapter } from '@deepkit/rpc';
import { io as connectSocketIo, Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { Peer } from '../peer';

/** The controller every benchmark peer serves: the payload comes back unchanged. */
@rpc.controller('bench/echo')
export class EchoController {
    @rpc.action()
    echo(payload: Uint8Array): Uint8Array {
        return payload;
    }
}

export interface EchoApi {
    echo(payload: Uint8Array): Promise<Uint8Array>;
}

/** A server running in its own process (see servers/process-protocol.ts). */
export class ServerProcess {
    /** Names the CPU profiles of the servers started from now on (BENCH_PROFILE_DIR): the scenario running. */
    static profileLabel = 'server';
    protected static started = 0;
    protected lines: string[] = [];
    protected waiting: ((line: string) => void)[] = [];

    protected constructor(readonly child: ChildProcess, readonly port: number) {
    }

    /** @param env extra environment of the server (e.g. the NATS URL of a cluster broker) */
    static async start(script: string, env: Record<string, string> = {}): Promise<ServerProcess> {
        const child = spawn(process.execPath, ['--expose-gc', '-r', 'ts-node/register/transpile-only', join(__dirname, 'servers', script)], {
            cwd: join(__dirname, '..'), stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env },
        });
        const first = await new Promise<string>((resolve, reject) => {
            let buffer = '';
            child.stdout!.on('data', chunk => {
                buffer += chunk;
                const newline = buffer.indexOf('\n');
                if (newline >= 0) resolve(buffer.slice(0, newline));
            });
            child.on('exit', code => reject(new Error(`${script} exited with ${code} before listening`)));
        });
        const server = new ServerProcess(child, JSON.parse(first).port);
        // BENCH_PROFILE_DIR=<dir>: the server profiles itself from now on (after startup) until it stops.
        if (process.env.BENCH_PROFILE_DIR) {
            const name = `server-${ServerProcess.profileLabel}-${script.replace(/\.ts$/, '')}-${++ServerProcess.started}.cpuprofile`;
            child.stdin!.write(`profile ${join(resolvePath(process.env.BENCH_PROFILE_DIR), name)}\n`);
        }
        let rest = '';
        child.stdout!.removeAllListeners('data');
        child.stdout!.on('data', chunk => {
            rest += chunk;
            let newline: number;
            while ((newline = rest.indexOf('\n')) >= 0) {
                const line = rest.slice(0, newline);
                rest = rest.slice(newline + 1);
                const waiter = server.waiting.shift();
                if (waiter) waiter(line); else server.lines.push(line);
            }
        });
        return server;
    }

    /** The server process's resident memory, after a garbage collection. */
    async rss(): Promise<number> {
        return (await this.memory()).rss;
    }

    /** Resident memory, and what its JavaScript retains (heap used + external), after a garbage collection. */
    async memory(): Promise<{ rss: number, retained: number }> {
        const answer = new Promise<string>(resolve => this.waiting.push(resolve));
        this.child.stdin!.write('rss\n');
        const { rss, heapUsed, external } = JSON.parse(await answer);
        return { rss, retained: heapUsed + external };
    }

    /**
     * CPU seconds (user + system, all threads) the server process used so far, read from /proc by the harness so
     * the server does no work for it; undefined where there is no /proc.
     */
    cpuSeconds(): number | undefined {
        return processCpuSeconds(this.child.pid!);
    }

    async stop(): Promise<void> {
        const exited = new Promise(resolve => this.child.once('exit', resolve));
        this.child.stdin!.end();
        await exited;
    }
}

/** CPU seconds (user + system, all threads) process `pid` used so far, from /proc; undefined where there is none. */
export function processCpuSeconds(pid: number): number | undefined {
    try {
        // Fields after the command (which may hold spaces and parentheses): state is field 3, utime 14, stime 15.
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop()!.split(' ');
        return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond();
    } catch {
        return undefined;
    }
}

let clockTicks: number | undefined;

/** The unit of /proc's CPU times (USER_HZ, 100 nearly everywhere). */
function clockTicksPerSecond(): number {
    if (clockTicks === undefined) {
        try {
            clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
        } catch {
            clockTicks = 100;
        }
    }
    return clockTicks;
}

export interface CallPair {
    call(payload: Uint8Array): Promise<unknown>;
    close(): Promise<void>;
}

export interface BenchSystem {
    name: string;
    server: string;
    /** A caller and a responder connected through the server. */
    pair(port: number): Promise<CallPair>;
}

const ws = (port: number) => `ws://127.0.0.1:${port}`;

export const switchboard: BenchSystem = {
    name: 'Switchboard',
    server: 'switchboard.ts',
    async pair(port) {
        const bob = await Peer.connect({ url: ws(port), id: 'bob', expose: [[EchoController, 'bench/echo']] });
        const alice = await Peer.connect({ url: ws(port), id: 'alice' });
        const echo = alice.to('bob').controller<EchoApi>('bench/echo');
        return { call: payload => echo.echo(payload), close: async () => { await alice.close(); await bob.close(); } };
    },
};

export const stockDeepkit: BenchSystem = {
    name: 'Deepkit (stock P2P)',
    server: 'deepkit-stock.ts',
    async pair(port) {
        const bob = new RpcClient(new RpcWebSocketClientAdapter(ws(port), WebSocket as any));
        await bob.registerAsPeer('bob');
        bob.registerPeerController(EchoController, 'bench/echo');
        const alice = new RpcClient(new RpcWebSocketClientAdapter(ws(port), WebSocket as any));
        const echo = alice.peer('bob').controller<EchoApi>('bench/echo');
        return { call: payload => echo.echo(payload), close: async () => { await alice.disconnect(); await bob.disconnect(); } };
    },
};

export const deepkitDirect: BenchSystem = {
    name: 'Deepkit client→server',
    server: 'deepkit-stock.ts',
    async pair(port) {
        const client = new RpcClient(new RpcWebSocketClientAdapter(ws(port), WebSocket as any));
        const echo = client.controller<EchoApi>('bench/echo');
        return { call: payload => echo.echo(payload), close: () => client.disconnect() };
    },
};

/** A raw ws client of the relay, with request ids in the first 4 payload bytes. */
export class RelayClient {
    protected pending = new Map<number, (frame: Buffer) => void>();
    protected nextId = 1;
    onFrame?: (source: string, payload: Buffer) => void;

    protected constructor(readonly socket: WebSocket, readonly id: string) {
        socket.on('message', (frame: Buffer) => {
            const source = frame.subarray(1, 1 + frame[0]).toString();
            const payload = frame.subarray(1 + frame[0]);
            const waiter = this.pending.get(payload.readUInt32LE(0));
            if (waiter) {
                this.pending.delete(payload.readUInt32LE(0));
                waiter(payload);
            } else {
                this.onFrame?.(source, payload);
            }
        });
    }

    static async connect(port: number, id: string): Promise<RelayClient> {
        const socket = new WebSocket(`${ws(port)}/?id=${id}`);
        await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
        return new RelayClient(socket, id);
    }

    send(target: string, payload: Uint8Array): void {
        const head = Buffer.from(target);
        this.socket.send(Buffer.concat([Buffer.from([head.length]), head, payload]));
    }

    /** Sends `payload` (its first 4 bytes are overwritten with a request id) and resolves with the answer. */
    request(target: string, payload: Uint8Array): Promise<Buffer> {
        const id = this.nextId++;
        const body = Buffer.from(payload);
        body.writeUInt32LE(id, 0);
        return new Promise(resolve => {
            this.pending.set(id, resolve);
            this.send(target, body);
        });
    }

    /** Answers every frame by sending it back to its source. */
    echo(): this {
        this.onFrame = (source, payload) => this.send(source, payload);
        return this;
    }

    close(): void {
        this.socket.close();
    }
}

export const wsRelay: BenchSystem = {
    name: 'raw ws relay',
    server: 'ws-relay.ts',
    async pair(port) {
        const bob = (await RelayClient.connect(port, 'bob')).echo();
        const alice = await RelayClient.connect(port, 'alice');
        return { call: payload => alice.request('bob', payload), close: async () => { alice.close(); bob.close(); } };
    },
};

export const socketIoRelay: BenchSystem = {
    name: 'Socket.IO relay (ack)',
    server: 'socketio-relay.ts',
    async pair(port) {
        const connect = async (id: string): Promise<Socket> => {
            const socket = connectSocketIo(`http://127.0.0.1:${port}`, { query: { id }, transports: ['websocket'] });
            await new Promise<void>(resolve => socket.once('connect', () => resolve()));
            return socket;
        };
        const bob = await connect('bob');
        bob.on('call', (payload: Buffer, ack: (reply: Buffer) => void) => ack(payload));
        const alice = await connect('alice');
        return { call: payload => alice.emitWithAck('call', 'bob', payload), close: async () => { alice.close(); bob.close(); } };
    },
};

export const callSystems = [switchboard, stockDeepkit, deepkitDirect, wsRelay, socketIoRelay];
