import { RpcTypes } from '@deepkit/rpc';
import { AccessDenied, MalformedMessage, PayloadTooLarge, RateLimited, SwitchboardError } from '@switchboard/protocol';
import { declaredFrameSize, FrameHeader, inspectFrame, MIN_FRAME_SIZE, BROKER_ONLY_FRAMES, Route, SwitchboardFrame } from '@switchboard/protocol/internal';
import { ChunkAssembler } from '../chunk-assembler';
import { chunkAckFrame, errorForClient, errorFrame, frameId } from '../frames';
import { SendBudget } from '../rate-limit';
import { RefusalAudit } from '../refusal-audit';
import { AuditEntry } from '../registry/audit-log';
import { CloseCode, ConnectionSide } from './connection-side';

/** Where the gate hands each frame that passed its checks, by kind. */
export interface FrameHandlers {
    /** A request to another peer (route peer). */
    request(header: FrameHeader, frame: Uint8Array): void;
    /** A reply to a request this connection's peer received (route sourceDest). */
    reply(header: FrameHeader, frame: Uint8Array): void;
    multicast(header: FrameHeader, frame: Uint8Array): void;
    /** The client's Hello: it decodes Switchboard's error classes. */
    hello(): void;
    /** A frame for Deepkit's own stream reader (acknowledgements of chunks the broker sends). */
    toDeepkitReader(frame: Uint8Array): void;
    /** A frame for the broker itself (its controllers, authentication, registration). */
    toBroker(header: FrameHeader, frame: Uint8Array): void;
}

/**
 * The gate on everything one client sends: checks every frame whole before any Deepkit reader sees it
 * (shared/frame-check.ts), reassembles chunked messages within bounds, rate-limits every frame, refuses the frame
 * types only the broker writes, and closes the connection after `maxProtocolViolations`.
 */
export class FrameGate {
    readonly budget: SendBudget;
    readonly refusals: RefusalAudit;
    protected chunks: ChunkAssembler;
    protected violations = 0;

    constructor(protected side: ConnectionSide, protected handlers: FrameHandlers) {
        const { config } = side.services;
        this.budget = new SendBudget(config.messagesPerSecond, config.bytesPerSecond || 4 * config.maxPayloadBytes);
        this.chunks = new ChunkAssembler(config.maxPayloadBytes, config.maxPayloadBytes * 2);
        this.refusals = new RefusalAudit((kind, entry) => side.record(kind, entry));
    }

    /**
     * One WebSocket message holding one or more whole frames. Each frame is validated in full (header, route data,
     * every length in its body) before any Deepkit reader sees it; Deepkit's own stream reader is bypassed, since it
     * trusts every size field it reads.
     */
    feed(buffer: Uint8Array, end: number): void {
        let offset = 0;
        while (offset < end && !this.side.closed) {
            const size = declaredFrameSize(buffer, offset);
            if (size < MIN_FRAME_SIZE || size > end - offset) {
                // Without a believable size there is no next frame to find: the rest of this message is dropped.
                const problem = size < 0 ? `A frame needs at least ${MIN_FRAME_SIZE} bytes; ${end - offset} are left.` : `The frame's size field says ${size} bytes, but ${end - offset} are left.`;
                return this.violation(frameId(buffer, offset), new MalformedMessage(problem));
            }
            this.acceptFrame(buffer.subarray(offset, offset + size));
            offset += size;
        }
    }

    protected acceptFrame(frame: Uint8Array, reassembled = false): void {
        const header = inspectFrame(frame);
        if (typeof header === 'string') return this.violation(frameId(frame), new MalformedMessage(header));
        if (BROKER_ONLY_FRAMES.has(header.type)) {
            return this.violation(header.id, new AccessDenied(`Frame type ${header.type} is written by the broker only.`, 'broker-only-frame'), header.peerId);
        }
        if (header.route === Route.server) {
            // Route "server" answers calls the broker made to the client; the broker makes none.
            return this.violation(header.id, new MalformedMessage('The broker accepts route types client, sourceDest and peer only.'));
        }
        const limit = this.side.services.config.maxPayloadBytes;
        if (header.size > limit) return this.refuse(header.id, PayloadTooLarge.for(header.size, limit), { target: header.peerId || undefined });
        if (header.route === Route.sourceDest) return this.handlers.reply(header, frame);
        // A reassembled message was charged its bytes chunk by chunk.
        if (!this.budget.take(1, reassembled ? 0 : header.size)) return this.refuse(header.id, this.rateLimited(), { target: header.peerId || undefined });
        if (header.route === Route.peer) return this.handlers.request(header, frame);
        if (header.type === RpcTypes.Chunk) {
            if (reassembled) return this.violation(header.id, new MalformedMessage('A chunked message cannot contain chunks.'));
            return this.acceptChunk(header, frame);
        }
        if (header.type === SwitchboardFrame.Multicast) return this.handlers.multicast(header, frame);
        if (header.type === SwitchboardFrame.Hello) return this.handlers.hello();
        // Acknowledgements of chunks the broker sends: Deepkit's reader keeps the waiting writers.
        if (header.type === RpcTypes.ChunkAck) return this.handlers.toDeepkitReader(frame);
        this.handlers.toBroker(header, frame);
    }

    protected acceptChunk(header: FrameHeader, frame: Uint8Array): void {
        const outcome = this.chunks.add(header.id, frame, header.bodyOffset);
        if (outcome.kind === 'refused') {
            if (outcome.violation) return this.violation(header.id, outcome.error);
            return this.refuse(header.id, outcome.error, {});
        }
        this.side.writeFrame(chunkAckFrame(header.id));
        if (outcome.kind === 'complete') this.acceptFrame(outcome.frame, true);
    }

    rateLimited(what?: string): RateLimited {
        const { messagesPerSecond } = this.side.services.config;
        const bytesPerSecond = this.budget.bytesPerSecond;
        const asked = what ? ` (${what})` : '';
        return new RateLimited(`Too much at once${asked}: this connection may make the broker send ${messagesPerSecond} messages and ${bytesPerSecond} bytes per second. Slow down, send to fewer peers or smaller bodies, and retry.`, messagesPerSecond);
    }

    /**
     * The target's connection had no room for a request of ours and answered its id with ReceiverBusy. Held against
     * this sender, which filled the target's buffer: a violation, not the target's disconnect.
     */
    receiverBusy(target: string): void {
        this.side.services.stats.refused('RECEIVER_BUSY');
        this.refusals.record('denied', { target, reason: 'RECEIVER_BUSY' });
        this.countViolation('RECEIVER_BUSY');
    }

    /** Answers the frame with a typed error and audits the refusal (aggregated when they come in floods). */
    refuse(messageId: number, error: SwitchboardError, entry: AuditEntry): void {
        this.side.writeFrame(errorFrame(messageId, errorForClient(error, this.side.typedErrors)));
        this.side.services.stats.refused(error.code);
        this.refusals.record('denied', { ...entry, reason: error.code });
    }

    /** A refusal of something no honest client sends; after `maxProtocolViolations` the connection is closed. */
    violation(messageId: number, error: SwitchboardError, target?: string): void {
        this.refuse(messageId, error, { target: target || undefined });
        this.countViolation(error.code);
    }

    /** On close: the aggregated refusals are written, partial chunked messages dropped. */
    close(): void {
        this.refusals.flush();
        this.chunks.clear();
    }

    protected countViolation(code: string): void {
        if (++this.violations >= this.side.services.config.maxProtocolViolations) {
            this.side.closeFor(CloseCode.protocolViolation, `${this.violations} protocol violations, the last: ${code}`);
        }
    }
}
