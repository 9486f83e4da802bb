import { randomBytes } from 'crypto';
import { rpcDecodeError, RpcTypes } from '@deepkit/rpc';
import { deserializeBSONWithoutOptimiser, serializeBSONWithoutOptimiser } from '@deepkit/bson';
import { MalformedMessage, PeerOffline, SwitchboardError, Timeout, HttpActionsApi } from '@switchboard/protocol';
import { inspectFrame, MIN_FRAME_SIZE, readUint32, connectionKey, encodeCallerGone } from '@switchboard/protocol/internal';
import { ExchangeEndpoint, FrameOrigin, PeerExchange } from '../exchange/peer-exchange';
import { peerFrame } from '../frames';

/** An error a peer answered with whose class this broker does not know (an app's own error). */
export class RemoteActionError extends Error {
    constructor(message: string, readonly className: string) {
        super(message);
    }
}

interface PendingCall {
    target: string;
    resolve(body: Record<string, unknown>): void;
    reject(error: Error): void;
    timer: ReturnType<typeof setTimeout>;
}

/** Calls one caller may have waiting at once; more are refused (the HTTP client gets 429). */
export const MAX_PENDING_HTTP_CALLS = 10_000;
/** Peers a caller remembers having called (they hear CallerGone when it closes). */
const MAX_CALLED_PEERS = 10_000;

/**
 * The broker acting as an RPC client of peers, for HTTP clients of one session: a connection of its own on the
 * peer exchange (no socket), so a call reaches its target on this broker or any other broker of the cluster the
 * same way a peer's call does, and the target's broker introduces it with a verified identity (session
 * `http:<session>`, no peer ID). It only ever calls the peers' HTTP gateway (HttpActionsApi), never an action
 * directly: the target decides what is HTTP-visible.
 */
export class HttpCaller implements ExchangeEndpoint {
    readonly connectionId: string;
    readonly origin: FrameOrigin;
    /** When it last started a call (for the idle sweep). */
    lastUsed = Date.now();
    protected readonly source: Uint8Array = randomBytes(16);
    protected nextId = 1;
    protected pending = new Map<number, PendingCall>();
    protected calledPeers = new Set<string>();
    protected closed = false;

    constructor(protected exchange: PeerExchange, session: string) {
        this.connectionId = connectionKey(this.source);
        this.origin = { connectionId: this.connectionId, session, typedErrors: true };
        exchange.attach(this);
    }

    get pendingCalls(): number {
        return this.pending.size;
    }

    /**
     * Calls `method` of the target's HTTP gateway. Resolves with the reply body (`{ v }`); rejects with the error the
     * target (or a broker on the way) answered, or Timeout. Returns false at once when no live connection holds the
     * target's ID.
     */
    call(target: string, method: keyof HttpActionsApi, args: unknown[], timeoutMs: number): Promise<Record<string, unknown>> | false {
        const id = this.nextId;
        this.nextId = this.nextId >= 0xffff_fffe ? 1 : this.nextId + 1;
        const body = serializeBSONWithoutOptimiser({ controller: HttpActionsApi.path, method, args });
        const frame = peerFrame(id, this.source, target, RpcTypes.Action, body);
        this.lastUsed = Date.now();
        if (!this.exchange.route(target, frame, this.origin)) return false;
        if (this.calledPeers.size < MAX_CALLED_PEERS) this.calledPeers.add(target);
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                this.pending.delete(id);
                reject(new Timeout(`Peer "${target}" did not answer within ${timeoutMs} ms.`, timeoutMs, 'action'));
            }, timeoutMs);
            // A stopping broker must not wait for it: the HTTP connection that waits is closed with the server.
            timer.unref?.();
            this.pending.set(id, { target, resolve, reject, timer });
        });
    }

    deliverReply(frames: Uint8Array): void {
        // Errors for many calls at once come as concatenated frames (a target that closed with calls unanswered).
        for (let offset = 0; frames.length - offset >= MIN_FRAME_SIZE;) {
            const size = readUint32(frames, offset);
            if (size < MIN_FRAME_SIZE || size > frames.length - offset) return;
            this.settle(offset === 0 && size === frames.length ? frames : frames.subarray(offset, offset + size));
            offset += size;
        }
    }

    protected settle(frame: Uint8Array): void {
        const header = inspectFrame(frame);
        if (typeof header === 'string') return;
        const call = this.pending.get(header.id);
        if (!call) return; // timed out already
        this.pending.delete(header.id);
        clearTimeout(call.timer);
        try {
            const body = header.bodyOffset < frame.length ? deserializeBSONWithoutOptimiser(frame, header.bodyOffset) : {};
            if (header.type === RpcTypes.ResponseActionSimple) return call.resolve(body);
            if (header.type === RpcTypes.Error) return call.reject(decodeError(body));
            call.reject(new MalformedMessage(`Peer "${call.target}" answered with an unexpected message type (${header.type}).`));
        } catch {
            call.reject(new MalformedMessage(`Peer "${call.target}" answered with a malformed message.`));
        }
    }

    deliverRequest(): void {
        // Nobody can address this connection: it registers no peer ID.
    }

    replaced(): void {
        // Holds no peer ID.
    }

    disconnect(reason: string): void {
        this.failPending(new PeerOffline(`The call could not be completed: ${reason}.`));
    }

    /** Tells the peers it called that it is gone (they drop its caller state) and leaves the exchange. */
    close(): void {
        if (this.closed) return;
        this.closed = true;
        this.failPending(new PeerOffline('The broker closed the HTTP caller before the peer answered.'));
        for (const target of this.calledPeers) this.exchange.route(target, encodeCallerGone(target, this.source), this.origin);
        this.calledPeers.clear();
        this.exchange.detach(this.connectionId);
    }

    protected failPending(error: SwitchboardError): void {
        for (const call of this.pending.values()) {
            clearTimeout(call.timer);
            call.reject(error);
        }
        this.pending.clear();
    }
}

/** The error a peer answered with: Switchboard's own and Deepkit's ValidationError rebuilt, anything else named. */
function decodeError(body: Record<string, unknown>): Error {
    const message = typeof body.message === 'string' ? body.message.slice(0, 2000) : '';
    const className = typeof body.classType === 'string' ? body.classType.slice(0, 200) : '';
    try {
        return rpcDecodeError({ classType: className, message, stack: '', properties: isRecord(body.properties) ? body.properties : undefined });
    } catch {
        return new RemoteActionError(message, className);
    }
}

function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}
