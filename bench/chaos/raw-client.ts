import WebSocket from 'ws';
import { clientFrame, errorCode, readFrame, ReceivedFrame, Types } from './wire-frames';

export interface CloseRecord {
    code: number;
    reason: string;
}

/**
 * A bare WebSocket client of the broker that writes frames by hand. It learns its connection id from the ClientId
 * handshake (needed to write a truthful source), tallies the typed errors it gets back, and records how the broker
 * closed it.
 */
export class RawClient {
    id: Uint8Array = new Uint8Array(16);
    /** Error code → how many error frames with it arrived. */
    readonly errors = new Map<string, number>();
    readonly closed: Promise<CloseRecord>;
    protected waiters = new Map<number, (frame: ReceivedFrame) => void>();
    protected listeners = new Set<(frame: ReceivedFrame) => void>();
    protected nextId = 1_000_000;

    protected constructor(readonly socket: WebSocket) {
        this.closed = new Promise(resolve => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
        socket.on('error', () => undefined);
        socket.on('message', (data: Buffer) => {
            // The broker may batch several frames into one message.
            for (let offset = 0; offset + 4 <= data.length;) {
                const size = data.readUInt32LE(offset);
                if (size < 11 || offset + size > data.length) return;
                this.dispatch(data.subarray(offset, offset + size));
                offset += size;
            }
        });
    }

    protected dispatch(data: Buffer): void {
        const received = readFrame(data);
        if (!received) return;
        if (received.type === Types.Error) {
            const code = errorCode(received);
            this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
        }
        const waiter = this.waiters.get(received.id);
        if (waiter) {
            this.waiters.delete(received.id);
            waiter(received);
        }
        for (const listener of this.listeners) listener(received);
    }

    /** Opens a connection; with `handshake`, also asks for the connection id. Rejects after `timeoutMs`. */
    static async open(url: string, options: { handshake: boolean, timeoutMs: number }): Promise<RawClient> {
        const socket = new WebSocket(url, { handshakeTimeout: options.timeoutMs, maxPayload: 64 * 1024 * 1024 });
        await new Promise<void>((resolve, reject) => {
            socket.once('open', () => resolve());
            socket.once('error', reject);
            socket.once('close', code => reject(new Error(`closed (${code}) while opening`)));
        });
        const client = new RawClient(socket);
        if (options.handshake) {
            const answer = await client.request(clientFrame(client.takeId(), Types.ClientId), options.timeoutMs);
            if (!answer || answer.type !== Types.ClientIdResponse || !(answer.body?.id instanceof Uint8Array)) {
                client.terminate();
                throw new Error('no ClientId handshake answer');
            }
            client.id = new Uint8Array(answer.body.id);
        }
        return client;
    }

    get open(): boolean {
        return this.socket.readyState === WebSocket.OPEN;
    }

    takeId(): number {
        return this.nextId++;
    }

    send(frame: Uint8Array): void {
        if (this.open) this.socket.send(frame);
    }

    /** Sends a frame and resolves with the first frame answering its id, or undefined after `timeoutMs`. */
    request(frame: Buffer, timeoutMs: number): Promise<ReceivedFrame | undefined> {
        const id = frame.readUInt32LE(5);
        return new Promise(resolve => {
            const timer = setTimeout(() => {
                this.waiters.delete(id);
                resolve(undefined);
            }, timeoutMs);
            this.waiters.set(id, answer => {
                clearTimeout(timer);
                resolve(answer);
            });
            this.send(frame);
            if (!this.open) {
                clearTimeout(timer);
                resolve(undefined);
            }
        });
    }

    /** Calls `listener` for every frame that arrives from now on; returns the unsubscribe function. */
    onFrame(listener: (frame: ReceivedFrame) => void): () => void {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
    }

    /** Resolves when the socket buffers at most `bytes` (the broker reads), or false after `timeoutMs`. */
    async drained(bytes: number, timeoutMs: number): Promise<boolean> {
        const until = performance.now() + timeoutMs;
        while (this.open && this.socket.bufferedAmount > bytes) {
            if (performance.now() > until) return false;
            await new Promise(resolve => setTimeout(resolve, 5));
        }
        return true;
    }

    close(): void {
        this.socket.close();
    }

    terminate(): void {
        this.socket.terminate();
    }
}

/** Adds `from`'s counts into `into`. */
export function addCounts(into: Map<string, number>, from: Map<string, number>): void {
    for (const [key, count] of from) into.set(key, (into.get(key) ?? 0) + count);
}
