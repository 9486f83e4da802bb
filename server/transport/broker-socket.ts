import { RpcKernelBaseConnection } from '@deepkit/rpc';
import { LoggerInterface } from '@deepkit/logger';
import { WebSocket } from 'ws';
import { OutgoingFrames } from '@switchboard/protocol/internal';
import { BrokerConnection, CloseCode, ReasonedTransport } from '../connection';
import { Heartbeat, Watched } from './heartbeat';
import { fitsOutgoingBuffer, requestFits, SlowReaderWatch } from './outgoing-buffer';

/** The WebSocket protocol allows 123 bytes of close reason. */
const MAX_CLOSE_REASON_BYTES = 123;

/** What every socket of one server shares: made once, so a socket holds one reference instead of a copy of each. */
export interface BrokerSocketSettings {
    handshakeTimeoutMs: number;
    pingIntervalMs: number;
    slowConsumerMs: number;
    /** Unsent bytes a socket may hold (`outgoingBufferLimit`). */
    bufferLimit: number;
    logger: LoggerInterface;
    heartbeat: Heartbeat;
    /** Called once the socket closed, before its connection is. */
    forget(socket: WebSocket): void;
}

/**
 * One accepted socket: the transport its Deepkit connection writes to, bounding its unsent bytes, and the reader of
 * its messages until it closes. A class rather than closures: an idle broker holds one of these per connected peer,
 * and methods on the prototype cost nothing per socket.
 * @reflection never
 */
export class BrokerSocket implements ReasonedTransport {
    protected connection?: RpcKernelBaseConnection;
    /** Set once the socket is to be closed: nothing more is queued for it. */
    protected ending = false;
    protected outgoing: OutgoingFrames;
    /** Made on the first refused request: most sockets never need one. */
    protected slowReader?: SlowReaderWatch;
    protected handshakeDeadline?: ReturnType<typeof setTimeout>;
    protected liveness?: Watched;

    constructor(protected socket: WebSocket, protected address: string, protected release: () => void, protected settings: BrokerSocketSettings) {
        this.outgoing = new OutgoingFrames(message => this.send(message), (header, body) => this.sendParts(header, body));
    }

    /** Starts reading the socket for `connection`, the Deepkit connection made over this transport. */
    open(connection: RpcKernelBaseConnection): void {
        const { socket, settings } = this;
        this.connection = connection;
        this.handshakeDeadline = setTimeout(expireHandshake, settings.handshakeTimeoutMs, this);
        this.handshakeDeadline.unref();
        this.liveness = settings.heartbeat.watch(socket, () => this.end(CloseCode.unresponsive, `unresponsive: no answer to two pings ${settings.pingIntervalMs} ms apart`));
        socket.on('message', this.onMessage);
        socket.on('close', this.onClose);
    }

    /** A bound field, not a method: Deepkit keeps this function apart from its transport. */
    readonly writeBinary = (message: Uint8Array): void => {
        if (!this.open_()) return;
        const unsent = this.unsentBytes();
        if (fitsOutgoingBuffer(unsent, message.byteLength, this.settings.bufferLimit)) return this.outgoing.push(message);
        this.overflowed(unsent);
    };

    writeParts(header: Uint8Array, body: Uint8Array): void {
        if (!this.open_()) return;
        const unsent = this.unsentBytes();
        if (fitsOutgoingBuffer(unsent, header.byteLength + body.byteLength, this.settings.bufferLimit)) return this.outgoing.pushParts(header, body);
        this.overflowed(unsent);
    }

    hasRoomFor(bytes: number): boolean {
        if (!this.open_()) return true;
        if (requestFits(this.unsentBytes(), bytes, this.settings.bufferLimit)) return true;
        this.slowReader ??= new SlowReaderWatch(this.settings.slowConsumerMs, this.settings.bufferLimit, () => this.unsentBytes(), unsent => this.stalled(unsent));
        this.slowReader.refused();
        return false;
    }

    close(): void {
        this.outgoing.flush();
        this.socket.close();
    }

    closeWith(code: number, reason: string): void {
        // What was written before the reason (the error answering the last frame) still goes out.
        this.outgoing.flush();
        this.ending = true;
        this.socket.close(code, limitReason(reason));
    }

    bufferedAmount(): number {
        return this.socket.bufferedAmount;
    }

    clientAddress(): string {
        return this.address;
    }

    /** Whether frames may still be queued: the socket is open and not being closed. */
    protected open_(): boolean {
        return !this.ending && this.socket.readyState === WebSocket.OPEN;
    }

    protected unsentBytes(): number {
        return this.socket.bufferedAmount + this.outgoing.pendingBytes;
    }

    protected send(message: Uint8Array): void {
        if (this.open_()) this.socket.send(message);
    }

    protected sendParts(header: Uint8Array, body: Uint8Array): void {
        // One WebSocket message in two fragments: the body is not copied per receiver.
        if (!this.open_()) return;
        this.socket.send(header, { binary: true, fin: false });
        this.socket.send(body, { binary: true, fin: true });
    }

    /** A write that cannot be refused did not fit. */
    protected overflowed(unsent: number): void {
        this.ending = true;
        this.outgoing.clear();
        // Not from inside this write: it may run in the middle of another connection's routing.
        queueMicrotask(() => this.end(CloseCode.slowConsumer, `slow consumer: ${unsent} bytes unsent`));
    }

    /** The reader stayed full `slowConsumerMs` after a refused request. */
    protected stalled(unsent: number): void {
        if (!this.open_()) return;
        this.ending = true;
        this.outgoing.clear();
        this.end(CloseCode.slowConsumer, `slow consumer: ${unsent} bytes unsent`);
    }

    end(code: number, reason: string): void {
        const { connection } = this;
        if (connection instanceof BrokerConnection) return connection.closeFor(code, reason);
        this.socket.close(code, limitReason(reason));
        connection?.close();
    }

    /** @internal */
    expireHandshake(): void {
        this.end(CloseCode.idle, `no message within ${this.settings.handshakeTimeoutMs} ms of connecting`);
    }

    protected readonly onMessage = (message: Buffer): void => {
        clearTimeout(this.handshakeDeadline);
        this.liveness!.heard = true;
        const connection = this.connection!;
        // One misbehaving connection must not take the broker (and every other peer) down.
        try {
            connection.feed(message);
        } catch (error) {
            this.settings.logger.error('Closing a connection after an error while reading its message', error);
            connection.close();
            this.socket.terminate();
        }
    };

    protected readonly onClose = (): void => {
        clearTimeout(this.handshakeDeadline);
        this.slowReader?.stop();
        this.settings.forget(this.socket);
        // Before the connection's own close, so a client that sees its peer go offline may reconnect at once.
        this.release();
        this.connection!.close();
    };
}

function expireHandshake(socket: BrokerSocket): void {
    socket.expireHandshake();
}

export function limitReason(reason: string): string {
    while (Buffer.byteLength(reason) > MAX_CLOSE_REASON_BYTES) reason = reason.slice(0, -1);
    return reason;
}
