import { ClientTransportAdapter, RpcError, TransportClientConnection } from '@deepkit/rpc';
import { OutgoingFrames } from '@switchboard/protocol/internal';

/** How the broker ended a connection: the WebSocket close code and reason. */
export interface SocketClose {
    code: number;
    reason: string;
}

/** The parts of a WebSocket (browser or the `ws` package) this transport uses. */
interface SocketLike {
    binaryType: string;
    bufferedAmount: number;
    onopen: ((event: any) => void) | null;
    onmessage: ((event: { data: ArrayBuffer }) => void) | null;
    onclose: ((event: { code: number, reason: string }) => void) | null;
    onerror: ((event: any) => void) | null;
    send(data: Uint8Array): void;
    close(code?: number, reason?: string): void;
    /** `ws` only: drops the TCP connection without a close handshake. */
    terminate?(): void;
}

/**
 * The SDK's WebSocket transport to the broker. Unlike Deepkit's `RpcWebSocketClientAdapter` it
 * - keeps the close code and reason of the last connection (`lastClose`), so the peer can tell "replaced by its
 *   owner" from "connection lost";
 * - counts the messages it receives (`messagesReceived`), the liveness evidence the peer's ping watchdog reads;
 * - detaches from a socket it closes: Deepkit's close handler tears down whatever connection is current when it
 *   runs, and a half-open socket's close event comes up to 30 s late, after the peer has reconnected;
 * - can `abort()` a connection that stopped answering, which fails its pending calls at once.
 */
export class WebSocketTransport implements ClientTransportAdapter {
    lastClose?: SocketClose;
    messagesReceived = 0;
    protected current?: { socket: SocketLike, connection: TransportClientConnection, detach(): void };
    /** After `refuseConnections()`: every connection attempt fails at once. */
    protected refusing?: string;

    /** @param url the broker the next `connect()` goes to; a peer with several brokers moves it along its list. */
    constructor(public url: string, protected webSocket: new (url: string) => unknown) {
    }

    connect(connection: TransportClientConnection): void {
        const url = this.url;
        if (this.refusing) throw new RpcError(this.refusing);
        let socket: SocketLike;
        try {
            socket = new this.webSocket(url) as SocketLike;
        } catch (error) {
            throw new RpcError(`${url} cannot be opened: ${error instanceof Error ? error.message : error}`);
        }
        this.lastClose = undefined;
        socket.binaryType = 'arraybuffer';
        let opened = false;
        let errored = false;
        const detach = () => {
            socket.onopen = socket.onmessage = socket.onclose = null;
            // `ws` throws an 'error' event nobody listens to; a closed-early socket may still emit one.
            socket.onerror = () => undefined;
            if (this.current?.socket === socket) this.current = undefined;
        };
        this.current = { socket, connection, detach };

        socket.onmessage = event => {
            this.messagesReceived++;
            connection.readBinary(new Uint8Array(event.data));
        };
        socket.onerror = () => {
            // The error event carries nothing useful; the close event that follows has the code.
            errored = true;
        };
        socket.onclose = event => {
            detach();
            this.lastClose = { code: event.code, reason: event.reason };
            const reason = `code ${event.code} reason ${event.reason || 'unknown'}`;
            // Deepkit's client puts "Could not connect: " before a failure to open: the cause alone here.
            const unopened = `the connection closed before it opened (WebSocket close code ${event.code}${event.reason ? `, ${event.reason}` : ''})`;
            if (errored || !opened) connection.onError(new RpcError(opened ? `abnormal error: ${reason}` : unopened));
            else connection.onClose(reason);
        };
        // Calls made in the same turn of the event loop (64 in flight, a chat burst) leave as one message; the broker splits them.
        const outgoing = new OutgoingFrames(message => {
            if (this.current?.socket === socket) socket.send(message);
        });
        socket.onopen = () => {
            opened = true;
            connection.onConnected({
                clientAddress: () => url,
                bufferedAmount: () => socket.bufferedAmount + outgoing.pendingBytes,
                close: () => {
                    outgoing.flush();
                    // Deepkit calls its own disconnect handling right after this; the socket's late close event must not.
                    detach();
                    socket.close();
                },
                writeBinary: message => outgoing.push(message),
            });
        };
    }

    /**
     * No more connections (the peer is closing): a call that would connect again fails at once with `reason`.
     */
    refuseConnections(reason: string): void {
        this.refusing = reason;
    }

    /**
     * Drops the current connection at once (no close handshake where the platform allows): for a broker that stopped
     * answering. Its pending calls fail with Disconnected, a connection attempt in progress fails.
     */
    abort(reason: string): void {
        const current = this.current;
        if (!current) return;
        current.detach();
        if (current.socket.terminate) current.socket.terminate();
        else current.socket.close();
        current.connection.onError(new RpcError(reason));
    }
}
