import { ClientTransportAdapter, RpcMessage, RpcTypes, TransportClientConnection } from '@deepkit/rpc';
import { Subject } from 'rxjs';
import { declaredFrameSize, inspectFrame, MIN_FRAME_SIZE, Route } from '@switchboard/protocol/internal';

/** Why a frame from the broker never reached a handler, or failed in one. */
export type DroppedFrameReason = 'malformed-frame' | 'misrouted-chunk' | 'invalid-caller-identity' | 'handler-error';

export interface DroppedFrame {
    reason: DroppedFrameReason;
    /** What was wrong, for logs; never shown to a remote party. */
    detail: string;
}

/**
 * What is wrong with a frame, or undefined when Deepkit may read it. Deepkit's reader trusts every header byte: a
 * size field of 0 spins its stream reader forever, a peer ID without its NUL terminator makes it loop past the end
 * of the buffer, and a BSON length that lies sends its decoders beyond the frame. So each frame of a WebSocket
 * message (the broker may send several in one) must pass the broker's own check before Deepkit reads it.
 */
export function checkInboundFrame(frame: Uint8Array): DroppedFrame | undefined {
    const header = inspectFrame(frame);
    if (typeof header === 'string') return { reason: 'malformed-frame', detail: header };
    // Chunks are the transport's own: only the broker connection writes them, on the client route.
    if ((header.type === RpcTypes.Chunk || header.type === RpcTypes.ChunkAck) && header.route !== Route.client) {
        return { reason: 'misrouted-chunk', detail: `a chunk on route ${header.route}` };
    }
    return undefined;
}

/**
 * The only way frames from the network reach a PeerClient: checks each frame before Deepkit's reader sees it, and
 * makes sure nothing thrown while handling a frame escapes into the WebSocket's message listener (where it would
 * end the process). Dropped frames are counted and reported on `dropped$`; the connection stays up.
 */
export class InboundFrameGuard implements ClientTransportAdapter {
    /** Every frame dropped, as it happens. */
    readonly dropped$ = new Subject<DroppedFrame>();
    droppedCount = 0;

    constructor(readonly transport: ClientTransportAdapter) {
    }

    supportsPeers(): boolean {
        return this.transport.supportsPeers ? this.transport.supportsPeers() : true;
    }

    supportsAuthentication(): boolean {
        return this.transport.supportsAuthentication ? this.transport.supportsAuthentication() : true;
    }

    connect(connection: TransportClientConnection): Promise<void> | void {
        return this.transport.connect({
            ...connection,
            read: (message: RpcMessage) => this.guarded(() => connection.read(message)),
            readBinary: (buffer: Uint8Array, bytes?: number) => {
                // The broker writes frames of one tick as one message: each is checked and read on its own.
                const end = bytes ?? buffer.byteLength;
                for (let offset = 0; offset < end;) {
                    const size = declaredFrameSize(buffer, offset);
                    if (size < MIN_FRAME_SIZE || size > end - offset) return this.drop('malformed-frame', `a size field of ${size} with ${end - offset} bytes left`);
                    const frame = buffer.subarray(offset, offset + size);
                    offset += size;
                    const dropped = checkInboundFrame(frame);
                    if (dropped) this.drop(dropped.reason, dropped.detail);
                    else this.guarded(() => connection.readBinary(frame));
                }
            },
        });
    }

    drop(reason: DroppedFrameReason, detail: string): void {
        this.droppedCount++;
        if (this.dropped$.observed) this.dropped$.next({ reason, detail });
    }

    protected guarded(handle: () => void): void {
        try {
            handle();
        } catch (error) {
            this.drop('handler-error', error instanceof Error ? error.message : String(error));
        }
    }
}
