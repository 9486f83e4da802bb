import { RpcTypes } from '@deepkit/rpc';
import { PeerOffline, ReceiverBusy } from '@switchboard/protocol';
import { connectionKey, destinationOf, encodeCallerGone, encodeCallerIdentity, FrameHeader, sourceOf, SwitchboardFrame } from '@switchboard/protocol/internal';
import { FrameOrigin } from '../exchange/peer-exchange';
import { errorForClient, FINAL_REPLY_TYPES, frameId, frameType, replyErrorFrame, replyErrorFrames, SOURCE_OFFSET } from '../frames';
import { ConnectionSide } from './connection-side';
import { FrameGate } from './frame-gate';

/** Bounds on per-connection bookkeeping, so a busy or hostile peer cannot grow the broker without limit. */
const MAX_PENDING_PER_CALLER = 10_000;
export const MAX_TRACKED_CALLERS = 10_000;

/**
 * The dashboard's active transfers are the streams one peer serves another (an action returning an Observable: a
 * file's chunks, a document's updates …), told apart by Deepkit's message types alone: the broker reads no payload
 * contract. A stream starts with the serving peer's first answer, carries items, and ends with one of these replies
 * or with one of the caller's stop requests.
 */
const STREAM_START_TYPES = new Set<number>([RpcTypes.ResponseActionObservable, RpcTypes.ResponseActionBehaviorSubject]);
const STREAM_END_TYPES = new Set<number>([RpcTypes.ResponseActionObservableComplete, RpcTypes.ResponseActionObservableError, RpcTypes.Error]);
const STREAM_STOP_TYPES = new Set<number>([RpcTypes.ActionObservableUnsubscribe, RpcTypes.ActionObservableDisconnect, RpcTypes.ActionObservableSubjectUnsubscribe]);

/** What the broker remembers of a caller whose requests this connection's peer still has to answer. */
interface CallerRequests {
    /** Whether the caller decodes Switchboard's error classes. */
    typedErrors: boolean;
    /** Request id → when it was routed. */
    ids: Map<number, number>;
}

/**
 * The calls of one connection, both ways: the requests its peer received and may still answer (only those may be
 * answered, by id), the callers introduced to it (CallerIdentity before a caller's first frame), and the peers it
 * called (they hear CallerGone when it closes). Requests it never answers end with PeerOffline when it goes.
 */
export class CallLedger {
    /** Caller connection → the identity last introduced to this connection's peer. */
    protected introduced?: Map<string, FrameOrigin>;
    /** Caller connection → ids of its requests this connection has received and may still answer → when routed. */
    protected pendingFromCallers?: Map<string, CallerRequests>;
    /** Peers this connection sent requests to: they hear CallerGone when it closes. */
    protected calledPeers?: Set<string>;
    // The three are made on first use: a broker holds a ledger per connected peer, and most peers sit idle.

    constructor(protected side: ConnectionSide, protected gate: FrameGate) {
    }

    /** This connection sent a request to `target`. */
    called(target: string): void {
        const calledPeers = this.calledPeers ??= new Set();
        if (calledPeers.size < MAX_TRACKED_CALLERS) calledPeers.add(target);
    }

    /**
     * A request from another connection for this one's peer: introduces the caller if needed and remembers the id.
     * @param head the frame, or at least its header (id, route, type) @param size the whole frame's bytes
     */
    deliver(head: Uint8Array, size: number, origin: FrameOrigin, write: () => void): boolean {
        const side = this.side;
        const caller = origin.connectionId;
        const type = frameType(head);
        if (type === SwitchboardFrame.CallerGone) {
            this.introduced?.delete(caller);
            this.pendingFromCallers?.delete(caller);
            // Its streams end with it; on another broker of a cluster, this is how this one hears of it.
            side.services.stats.transfersClosed(caller);
            write();
            return true;
        }
        const typedErrors = !!origin.typedErrors;
        const transport = side.transport();
        if (!side.closed && transport.hasRoomFor && !transport.hasRoomFor(size)) {
            // Refused to the sender, not written: a sender must not be able to get a receiver closed by filling its
            // buffer. A receiver that stays full is closed by the slow-consumer watch.
            const error = ReceiverBusy.for(side.peerId ?? '', size);
            const source = Buffer.from(caller, 'hex');
            side.services.exchange.reply(caller, replyErrorFrame(frameId(head), side.id, source, errorForClient(error, typedErrors)));
            return false;
        }
        const introducedTo = this.introduced ??= new Map();
        const introduced = introducedTo.get(caller);
        if (introduced !== origin && side.peerId && !sameIdentity(introduced, origin)) {
            evictOldest(introducedTo, MAX_TRACKED_CALLERS);
            introducedTo.set(caller, origin);
            const source = sourceOf(head);
            side.writeFrame(encodeCallerIdentity(side.peerId, source, { peerId: origin.peerId, session: origin.session, typedErrors }));
        }
        const pendingFromCallers = this.pendingFromCallers ??= new Map();
        let pending = pendingFromCallers.get(caller);
        if (!pending) {
            evictOldest(pendingFromCallers, MAX_TRACKED_CALLERS);
            pendingFromCallers.set(caller, pending = { typedErrors, ids: new Map() });
        }
        evictOldest(pending.ids, MAX_PENDING_PER_CALLER);
        const id = frameId(head);
        pending.ids.set(id, performance.now());
        write();
        if (STREAM_STOP_TYPES.has(type)) side.services.stats.transferEnded(caller, id);
        return true;
    }

    /** A reply to a request this connection's peer received. Replies are never rate limited: refusing one would lose a call the broker accepted. */
    reply(header: FrameHeader, frame: Uint8Array): void {
        const caller = connectionKey(destinationOf(frame));
        const pending = this.pendingFromCallers?.get(caller)?.ids;
        const { stats, exchange } = this.side.services;
        if (!pending || !pending.has(header.id)) {
            // Also what a late reply looks like after its caller left, so it is dropped, not held against the
            // sender; but a flood of them is limited like any other frame.
            stats.refused('UNSOLICITED_REPLY');
            if (this.gate.budget.take(1, 0)) this.gate.refusals.record('denied', { reason: 'unsolicited-reply' });
            return;
        }
        const type = header.type;
        if (FINAL_REPLY_TYPES.has(type)) {
            stats.observeCallLatency(performance.now() - pending.get(header.id)!);
            pending.delete(header.id);
        }
        if (type === RpcTypes.Error) stats.callErrors++;
        if (type === RpcTypes.ResponseActionObservableNext) stats.transferCarried(caller, header.id, frame.byteLength);
        else if (STREAM_START_TYPES.has(type)) this.streamStarted(caller, header.id);
        else if (STREAM_END_TYPES.has(type)) stats.transferEnded(caller, header.id);
        // Deepkit writes the id of the replying kernel connection here, not of the client; the truth is this one.
        frame.set(this.side.id, SOURCE_OFFSET);
        stats.framesRouted++;
        stats.bytesRouted += frame.byteLength;
        exchange.reply(caller, frame);
    }

    /** This connection's peer answered `caller`'s request `id` with a stream. */
    protected streamStarted(caller: string, id: number): void {
        const side = this.side;
        const to = this.introduced?.get(caller);
        side.services.stats.transferStarted(caller, id, to?.peerId ?? to?.session ?? 'unknown', side.peerId ?? side.sessionName);
    }

    /**
     * Ends every request this connection's peer received as `peerId` and never answered with PeerOffline, on this
     * broker or the caller's (HTTP callers too): they would otherwise wait for their own timeouts. A late answer is
     * then dropped as unsolicited.
     */
    failUnanswered(peerId: string, reason: string): void {
        const { exchange, stats } = this.side.services;
        const error = PeerOffline.for(peerId, new Date, reason);
        if (!this.pendingFromCallers) return;
        for (const [caller, { typedErrors, ids }] of this.pendingFromCallers) {
            if (!ids.size) continue;
            const destination = Buffer.from(caller, 'hex');
            for (const frames of replyErrorFrames(ids.keys(), this.side.id, destination, errorForClient(error, typedErrors))) exchange.reply(caller, frames);
            for (const id of ids.keys()) stats.transferEnded(caller, id);
            ids.clear();
        }
    }

    /** On close: the peers this connection called hear CallerGone (from `origin`); everything is forgotten. */
    close(origin: FrameOrigin): void {
        const { exchange } = this.side.services;
        for (const target of this.calledPeers ?? []) exchange.route(target, encodeCallerGone(target, this.side.id), origin);
        this.pendingFromCallers = undefined;
        this.calledPeers = undefined;
        this.introduced = undefined;
    }
}

function evictOldest<K>(collection: Set<K> | Map<K, unknown>, limit: number): void {
    if (collection.size < limit) return;
    const oldest = collection.keys().next();
    if (!oldest.done) collection.delete(oldest.value);
}

function sameIdentity(a: FrameOrigin | undefined, b: FrameOrigin): boolean {
    return !!a && a.peerId === b.peerId && a.session === b.session && !!a.typedErrors === !!b.typedErrors;
}
