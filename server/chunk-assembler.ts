import { getBSONDeserializer } from '@deepkit/bson';
import { rpcChunk } from '@deepkit/rpc';
import { PayloadTooLarge, SwitchboardError, MalformedMessage, RateLimited } from '@switchboard/protocol';

const readChunk = getBSONDeserializer<rpcChunk>();

/** Chunked messages one connection may be sending at once (Deepkit's client sends one per message id at a time). */
const MAX_MESSAGES_IN_FLIGHT = 8;
/** A chunked message whose next chunk does not come within this time is dropped (Deepkit's own reader: 60 s). */
const STALE_AFTER_MS = 60_000;

export type ChunkOutcome =
    | { kind: 'partial' }
    | { kind: 'complete', frame: Uint8Array }
    /** `violation`: the sender broke the protocol (not just a limit an honest client can reach). */
    | { kind: 'refused', error: SwitchboardError, violation: boolean };

interface Assembly {
    total: number;
    loaded: number;
    nextSeq: number;
    parts: Uint8Array[];
    lastAt: number;
}

/**
 * Reassembles Deepkit's chunked messages (type Chunk: `{ seq, total, v }`, one per 100 kB of a large message) with
 * bounds, in place of Deepkit's reader, which keeps chunks that add up past their total for ever and bypasses the
 * rate limit. Here: chunks must come in order, never exceed their declared total, the total must fit the payload
 * limit, and the bytes held across all of a connection's unfinished messages stay under `maxHeldBytes`.
 */
export class ChunkAssembler {
    /** Made at the first chunk: most connections never send a chunked message (an empty Map costs ~0.2 KiB each). */
    protected open?: Map<number, Assembly>;
    protected heldBytes = 0;

    constructor(protected maxMessageBytes: number, protected maxHeldBytes: number, protected now: () => number = Date.now) {
    }

    /** `body` is the BSON body of a frame that already passed `inspectFrame`. */
    add(id: number, frame: Uint8Array, bodyOffset: number): ChunkOutcome {
        let chunk: rpcChunk;
        try {
            chunk = readChunk(frame, bodyOffset);
        } catch {
            return this.refuse(id, new MalformedMessage('A chunk body must be { seq, total, v }.'), true);
        }
        const { seq, total, v } = chunk;
        if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(total) || !(v instanceof Uint8Array) || total < 1) {
            return this.refuse(id, new MalformedMessage('A chunk body must be { seq, total, v } with whole numbers and bytes.'), true);
        }
        this.dropStale();
        const assemblies = this.open ??= new Map();
        let assembly = assemblies.get(id);
        if (!assembly) {
            if (seq !== 0) return this.refuse(id, new MalformedMessage(`A chunked message must start at chunk 0, not ${seq}.`), true);
            if (total > this.maxMessageBytes) return this.refuse(id, PayloadTooLarge.for(total, this.maxMessageBytes), false);
            if (assemblies.size >= MAX_MESSAGES_IN_FLIGHT) {
                return this.refuse(id, new RateLimited(`At most ${MAX_MESSAGES_IN_FLIGHT} chunked messages may be in flight on one connection.`, 0), false);
            }
            assembly = { total, loaded: 0, nextSeq: 0, parts: [], lastAt: this.now() };
            assemblies.set(id, assembly);
        }
        if (seq !== assembly.nextSeq || total !== assembly.total) {
            return this.refuse(id, new MalformedMessage(`Chunk ${seq} of message ${id} does not follow chunk ${assembly.nextSeq - 1} of the same total.`), true);
        }
        if (assembly.loaded + v.byteLength > assembly.total) {
            return this.refuse(id, new MalformedMessage(`The chunks of message ${id} add up past their declared total of ${assembly.total} bytes.`), true);
        }
        if (this.heldBytes + v.byteLength > this.maxHeldBytes) {
            return this.refuse(id, PayloadTooLarge.for(this.heldBytes + v.byteLength, this.maxHeldBytes), false);
        }
        assembly.parts.push(v);
        assembly.loaded += v.byteLength;
        assembly.nextSeq++;
        assembly.lastAt = this.now();
        this.heldBytes += v.byteLength;
        if (assembly.loaded < assembly.total) return { kind: 'partial' };

        this.forget(id);
        const whole = new Uint8Array(assembly.total);
        let offset = 0;
        for (const part of assembly.parts) {
            whole.set(part, offset);
            offset += part.byteLength;
        }
        return { kind: 'complete', frame: whole };
    }

    /** Bytes held for unfinished messages. */
    get held(): number {
        return this.heldBytes;
    }

    clear(): void {
        this.open = undefined;
        this.heldBytes = 0;
    }

    protected refuse(id: number, error: SwitchboardError, violation: boolean): ChunkOutcome {
        this.forget(id);
        return { kind: 'refused', error, violation };
    }

    protected forget(id: number): void {
        const assembly = this.open?.get(id);
        if (!assembly) return;
        this.heldBytes -= assembly.loaded;
        this.open!.delete(id);
    }

    protected dropStale(): void {
        if (!this.open?.size) return;
        const now = this.now();
        for (const [id, assembly] of this.open) if (now - assembly.lastAt > STALE_AFTER_MS) this.forget(id);
    }
}
