import { LoggerInterface } from '@deepkit/logger';
import { MIN_FRAME_SIZE, readUint32 } from '@switchboard/protocol/internal';
import { FrameOrigin } from '../exchange/peer-exchange';
import { ClusterNames } from './cluster-names';
import { BatchWriter, splitBatch } from './envelope';
import { ClusterBus } from './bus/cluster-bus';

/**
 * The frames this broker has for other brokers, one batch per destination, published to each destination's inbox at
 * the end of the microtask (or at once when a batch reaches NATS's max payload; a larger batch travels in parts).
 * Nothing is published while the link is down: NATS would buffer it and deliver it late, after its caller gave up.
 */
export class BrokerOutbox {
    protected writers = new Map<string, BatchWriter>();
    protected inboxes = new Map<string, string>();
    protected flushScheduled = false;
    protected published = 0;

    /** @param failed a publish to `brokerId` threw: the calls on their way to it will get no reply */
    constructor(
        protected selfId: string,
        protected bus: ClusterBus,
        protected names: ClusterNames,
        protected logger: LoggerInterface,
        protected failed: (brokerId: string, error: Error) => void,
    ) {
    }

    /** Bytes published to other brokers so far. */
    get bytesPublished(): number {
        return this.published;
    }

    request(brokerId: string, origin: FrameOrigin, frame: Uint8Array): void {
        const writer = this.writer(brokerId);
        writer.request(origin, frame);
        this.queued(brokerId, writer);
    }

    /** Error replies for many ids come as concatenated frames (replyErrorFrames): each travels as its own envelope. */
    reply(brokerId: string, frame: Uint8Array): void {
        const writer = this.writer(brokerId);
        let offset = 0;
        while (frame.length - offset >= MIN_FRAME_SIZE) {
            const size = readUint32(frame, offset);
            if (size < MIN_FRAME_SIZE || size > frame.length - offset) break;
            writer.reply(offset === 0 && size === frame.length ? frame : frame.subarray(offset, offset + size));
            offset += size;
        }
        this.queued(brokerId, writer);
    }

    /** Drops what waits for `brokerId` (it died), or for every broker (the link went down). */
    drop(brokerId?: string): void {
        if (brokerId === undefined) for (const writer of this.writers.values()) writer.take();
        else this.writers.get(brokerId)?.take();
    }

    flush(): void {
        this.flushScheduled = false;
        for (const [brokerId, writer] of this.writers) {
            if (!writer.empty) this.publish(brokerId, writer);
        }
    }

    protected writer(brokerId: string): BatchWriter {
        let writer = this.writers.get(brokerId);
        if (!writer) this.writers.set(brokerId, writer = new BatchWriter(this.selfId));
        return writer;
    }

    protected queued(brokerId: string, writer: BatchWriter): void {
        if (writer.bytes >= this.bus.maxPayload) return this.publish(brokerId, writer);
        if (this.flushScheduled) return;
        this.flushScheduled = true;
        queueMicrotask(() => this.flush());
    }

    protected publish(brokerId: string, writer: BatchWriter): void {
        const batch = writer.take();
        if (!this.bus.connected) return; // their calls were failed when the link went down
        let subject = this.inboxes.get(brokerId);
        if (!subject) this.inboxes.set(brokerId, subject = this.names.inbox(brokerId));
        const maxPayload = this.bus.maxPayload;
        this.published += batch.length;
        try {
            if (batch.length <= maxPayload) this.bus.publish(subject, batch);
            else for (const part of splitBatch(batch, maxPayload)) this.bus.publish(subject, part);
        } catch (error) {
            this.logger.warn(`Cluster: could not publish to broker ${brokerId}`, (error as Error).message);
            this.failed(brokerId, error as Error);
        }
    }
}
