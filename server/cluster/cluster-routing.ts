import { RpcTypes } from '@deepkit/rpc';
import { ClusterUnavailable, PeerOffline, SwitchboardError } from '@switchboard/protocol';
import { CONNECTION_ID_BYTES, DESTINATION_OFFSET, destinationOf, MIN_FRAME_SIZE, PEER_ID_OFFSET, readUint32, sourceOf, connectionKey, encodeCallerGone, Route, SwitchboardFrame } from '@switchboard/protocol/internal';
import { FrameOrigin, RouteResult } from '../exchange/peer-exchange';
import { errorForClient, FINAL_REPLY_TYPES, frameId, frameType, replyErrorFrame, replyErrorFrames, ROUTE_OFFSET, sameBytes } from '../frames';
import { ClusterContext } from './cluster-context';
import { connectionBytesOf } from './directory-entry';
import { BatchReader, decodeOrigin, EnvelopeHandler } from './envelope';
import { CallerCalls } from './in-flight-calls';

/** Callers on other brokers this broker remembers (to send their replies back), at most. */
const MAX_REMOTE_CALLERS = 100_000;
const NO_CONNECTION = new Uint8Array(16);
/** Peers here one remote caller is remembered to have called (for CallerGone when its broker dies). */
const MAX_TARGETS_PER_REMOTE_CALLER = 256;
export const LINK_DOWN = 'this broker lost its NATS link';

/**
 * Frames between brokers: routed per broker, not per peer. Each broker listens on its inbox subject; frames for peers
 * on another broker are enveloped (server/cluster/envelope.ts) and published to that broker's inbox, batched per
 * microtask (server/cluster/broker-outbox.ts). `route()` stays synchronous: the local directory view says at once
 * whether and where a peer is. Calls whose replies will never come end here, with an error saying why.
 */
export class ClusterRouting {
    protected readonly reader: BatchReader;
    /** Caller connection on another broker → that broker: where replies to it go. */
    protected remoteCallers = new Map<string, string>();
    /** Caller connection on another broker → the peers here it called: told CallerGone if its broker dies. */
    protected remoteCallTargets = new Map<string, Set<string>>();
    /** Caller connection → its origin as last received, so an unchanged origin is not decoded again per frame. */
    protected origins = new Map<string, { header: Uint8Array, origin: FrameOrigin }>();
    protected malformedBatches = 0;

    /** `localPeers`: peerId → connectionId of the IDs held here (server/cluster/cluster-registrations.ts). */
    constructor(protected context: ClusterContext, protected localPeers: ReadonlyMap<string, string>) {
        this.reader = new BatchReader(context.options.maxPayloadBytes + 2 * 1024 * 1024);
    }

    route(peerId: string, frame: Uint8Array, origin: FrameOrigin): RouteResult {
        const { directory, bus, liveness } = this.context;
        const entry = directory.entries.get(peerId);
        if (!entry) return false;
        const brokerId = entry.brokerId;
        if (brokerId === this.context.brokerId) {
            const endpoint = this.context.endpoints.get(entry.connectionId);
            if (!endpoint || this.localPeers.get(peerId) !== entry.connectionId) return false;
            return endpoint.deliverRequest(frame, origin) === false ? 'busy' : true;
        }
        if (!bus.connected || !liveness.reachable(brokerId) || this.context.stopped) return false;
        const type = frameType(frame);
        // Tracked before it is queued: a publish that fails at once fails the calls in flight.
        if (type === RpcTypes.Action || type === RpcTypes.ActionType) this.context.inFlight.add(brokerId, origin.connectionId, !!origin.typedErrors, frameId(frame), peerId);
        this.context.outbox.request(brokerId, origin, frame);
        return 'forwarded';
    }

    /** Why `route` refused a peer that the directory places on another broker: the cluster, not the target. */
    refusal(peerId: string): SwitchboardError | undefined {
        const entry = this.context.directory.entries.get(peerId);
        if (!entry || entry.brokerId === this.context.brokerId || this.context.stopped) return undefined;
        if (!this.context.bus.connected) return ClusterUnavailable.for(peerId, LINK_DOWN);
        if (this.context.liveness.unconfirmed(entry.brokerId)) return ClusterUnavailable.for(peerId, `its broker ${entry.brokerId} has not been heard since this broker's NATS link came back`);
        return undefined;
    }

    reply(connectionId: string, frame: Uint8Array): boolean {
        const endpoint = this.context.endpoints.get(connectionId);
        if (endpoint) {
            endpoint.deliverReply(frame);
            return true;
        }
        const brokerId = this.remoteCallers.get(connectionId);
        if (!brokerId || !this.context.bus.connected || !this.context.liveness.reachable(brokerId) || this.context.stopped) return false;
        this.context.outbox.reply(brokerId, frame);
        return true;
    }

    protected readonly envelopes: EnvelopeHandler = {
        request: (sender, originHeader, frame) => {
            this.context.liveness.confirm(sender);
            this.incomingRequest(sender, originHeader, frame);
        },
        reply: (sender, frame) => {
            this.context.liveness.confirm(sender);
            this.incomingReply(sender, frame);
        },
    };

    /** A batch published to this broker's inbox. */
    receive(message: Uint8Array): void {
        if (this.context.stopped) return;
        try {
            const problem = this.reader.read(message, this.envelopes);
            if (problem && this.malformedBatches++ % 1000 === 0) this.context.logger.warn(`Cluster: dropped a malformed batch (${problem}); ${this.malformedBatches} so far`);
        } catch (error) {
            this.context.logger.error('Cluster: a batch failed', error);
        }
    }

    protected incomingRequest(sender: string, originHeader: Uint8Array, frame: Uint8Array): void {
        if (frame[ROUTE_OFFSET] !== Route.peer) return;
        const callerBytes = sourceOf(frame);
        const caller = connectionKey(callerBytes);
        const peerId = peerIdOf(frame);
        const origin = this.originOf(caller, originHeader);
        const type = frameType(frame);
        const connectionId = this.localPeers.get(peerId);
        const endpoint = connectionId && this.context.endpoints.get(connectionId);
        if (type === SwitchboardFrame.CallerGone) {
            this.remoteCallers.delete(caller);
            this.remoteCallTargets.delete(caller);
            this.origins.delete(caller);
            if (endpoint) endpoint.deliverRequest(frame, origin);
            return;
        }
        if (this.remoteCallers.get(caller) !== sender) {
            if (this.remoteCallers.size >= MAX_REMOTE_CALLERS) this.remoteCallers.delete(this.remoteCallers.keys().next().value!);
            this.remoteCallers.set(caller, sender);
        }
        // Refused for want of room, the endpoint answers the caller itself.
        if (endpoint) {
            calledHere(this.remoteCallTargets, caller, peerId);
            return void endpoint.deliverRequest(frame, origin);
        }
        // The peer left while the frame was on its way: the caller hears it now, not at its timeout.
        if (type !== RpcTypes.Action && type !== RpcTypes.ActionType) return;
        const error = errorForClient(PeerOffline.for(peerId, new Date, 'went offline before the call reached it'), !!origin.typedErrors);
        this.context.outbox.reply(sender, replyErrorFrame(frameId(frame), NO_CONNECTION, callerBytes, error));
    }

    protected incomingReply(sender: string, frame: Uint8Array): void {
        if (frame[ROUTE_OFFSET] !== Route.sourceDest || frame.length < DESTINATION_OFFSET + CONNECTION_ID_BYTES + 2) return;
        const destination = connectionKey(destinationOf(frame));
        if (readUint32(frame, 0) === frame.length) {
            if (FINAL_REPLY_TYPES.has(frameType(frame))) this.context.inFlight.settle(sender, destination, frameId(frame));
        } else {
            // Errors for many calls come as one message of frames side by side (a peer that left with calls
            // unanswered): each settles its call, or a later broker death would end them a second time.
            for (let offset = 0, size = 0; frame.length - offset >= MIN_FRAME_SIZE; offset += size) {
                size = readUint32(frame, offset);
                if (size < MIN_FRAME_SIZE || size > frame.length - offset) break;
                const one = frame.subarray(offset, offset + size);
                if (FINAL_REPLY_TYPES.has(frameType(one))) this.context.inFlight.settle(sender, destination, frameId(one));
            }
        }
        this.context.endpoints.get(destination)?.deliverReply(frame);
    }

    protected originOf(caller: string, header: Uint8Array): FrameOrigin {
        const cached = this.origins.get(caller);
        if (cached && cached.header.length === header.length && sameBytes(header, 0, cached.header)) return cached.origin;
        const origin = decodeOrigin(header, caller);
        if (!cached && this.origins.size >= MAX_REMOTE_CALLERS) this.origins.delete(this.origins.keys().next().value!);
        this.origins.set(caller, { header: header.slice(), origin });
        return origin;
    }

    /** Ends calls whose replies will never come: with PeerOffline (their broker died), or with `errorFor` (say why). */
    failCalls(calls: Map<string, CallerCalls>, reason: string, errorFor: (target: string) => SwitchboardError = target => PeerOffline.for(target, new Date, reason)): void {
        for (const [caller, { typedErrors, ids }] of calls) {
            const endpoint = this.context.endpoints.get(caller);
            if (!endpoint || !ids.size) continue;
            const byTarget = new Map<string, number[]>();
            for (const [id, target] of ids) {
                let list = byTarget.get(target);
                if (!list) byTarget.set(target, list = []);
                list.push(id);
            }
            const destination = Buffer.from(caller, 'hex');
            for (const [target, list] of byTarget) {
                const known = this.context.directory.entries.get(target);
                const source = known ? connectionBytesOf(known) : NO_CONNECTION;
                const error = errorForClient(errorFor(target), typedErrors);
                for (const frames of replyErrorFrames(list, source, destination, error)) endpoint.deliverReply(frames);
            }
        }
    }

    /** A broker stopped or died: calls to it end, what was half-read or queued for it goes, its callers are gone. */
    brokerGone(brokerId: string, reason: string): void {
        this.failCalls(this.context.inFlight.take(brokerId), reason);
        this.reader.forget(brokerId);
        this.context.outbox.drop(brokerId);
        for (const [caller, broker] of this.remoteCallers) {
            if (broker !== brokerId) continue;
            this.remoteCallers.delete(caller);
            this.callerGone(caller);
        }
    }

    /**
     * A caller on a broker that died can no longer say it is gone: its peers here hear CallerGone as if it had left,
     * so they stop the streams they serve it and drop its state.
     */
    protected callerGone(caller: string): void {
        const targets = this.remoteCallTargets.get(caller);
        this.remoteCallTargets.delete(caller);
        const origin = this.origins.get(caller)?.origin ?? { connectionId: caller, session: '' };
        this.origins.delete(caller);
        if (!targets) return;
        const callerBytes = Buffer.from(caller, 'hex');
        for (const peerId of targets) {
            const connectionId = this.localPeers.get(peerId);
            const endpoint = connectionId && this.context.endpoints.get(connectionId);
            if (endpoint) endpoint.deliverRequest(encodeCallerGone(peerId, callerBytes), origin);
        }
    }
}

/** Remembers that `caller` (on another broker) called `peerId` here; bounded like the callers it belongs to. */
function calledHere(targets: Map<string, Set<string>>, caller: string, peerId: string): void {
    let called = targets.get(caller);
    if (!called) {
        if (targets.size >= MAX_REMOTE_CALLERS) targets.delete(targets.keys().next().value!);
        targets.set(caller, called = new Set());
    }
    if (called.size < MAX_TARGETS_PER_REMOTE_CALLER) called.add(peerId);
}

/** The target peer ID of a peer-routed frame (ASCII, NUL-terminated after the source). */
function peerIdOf(frame: Uint8Array): string {
    let end = PEER_ID_OFFSET;
    const limit = Math.min(frame.length, end + 65);
    let id = '';
    while (end < limit && frame[end] !== 0) id += String.fromCharCode(frame[end++]);
    return id;
}
