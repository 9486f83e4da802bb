import { RpcTypes } from '@deepkit/rpc';
import { MalformedMessage, SwitchboardError } from '@switchboard/protocol';
import { FrameHeader, MulticastOutcome } from '@switchboard/protocol/internal';
import { actionNameOf, multicastCopySize, multicastResultFrame, peerFrame, peerFrameHeader, readMulticastRequest } from '../frames';
import { CallLedger } from './call-ledger';
import { ConnectionSide } from './connection-side';
import { FrameGate } from './frame-gate';

/**
 * One Action for many peers: each distinct target gets its own copy (message id `firstId + i`, i its first
 * mention), under the same checks as a single call (send policy per target, verified caller identity, reply
 * tracking, audit); the sender gets the outcome of each target at once.
 * Bounded before any work: every copy is charged to the sender's budget (one message and its bytes per distinct
 * target), so one frame costs at most a second's budget; a copy is built only for a target that is online.
 */
export class Multicast {
    constructor(protected side: ConnectionSide, protected gate: FrameGate, protected ledger: CallLedger) {
    }

    send(header: FrameHeader, frame: Uint8Array): void {
        const side = this.side;
        const request = readMulticastRequest(frame, header.bodyOffset);
        if (typeof request === 'string') return this.gate.violation(header.id, new MalformedMessage(request));
        const { targets, firstId, body } = request;
        const firstMention = new Map<string, number>();
        let copyBytes = 0;
        for (let i = 0; i < targets.length; i++) {
            if (firstMention.has(targets[i])) continue;
            firstMention.set(targets[i], i);
            copyBytes += multicastCopySize(targets[i], body);
        }
        // The multicast frame itself paid for one message and its own bytes on arrival.
        if (!this.gate.budget.take(Math.max(0, firstMention.size - 1), copyBytes)) {
            return this.gate.refuse(header.id, this.gate.rateLimited(`a multicast of ${firstMention.size} copies, ${copyBytes} bytes in all`), {});
        }
        const { stats, exchange, registry, audit } = side.services;
        const session = side.session();
        const origin = side.origin();
        const action = actionNameOf(body, 0);
        const outcomes: MulticastOutcome[] = [];
        for (let i = 0; i < targets.length; i++) {
            const target = targets[i];
            if (firstMention.get(target) !== i) {
                outcomes.push('duplicate');
                continue;
            }
            try {
                side.security.assertMaySend(session, target);
            } catch (error) {
                stats.callsDenied++;
                this.gate.refusals.record('denied', { target, reason: (error as SwitchboardError).code });
                outcomes.push('denied');
                continue;
            }
            // A copy is a header of its own and the one body, handed on side by side where the exchange can; it is
            // made only for a target that can take it: an unknown one costs a lookup, no bytes.
            const routed = exchange.lookup(target) && (exchange.routeParts
                ? exchange.routeParts(target, peerFrameHeader(firstId + i, side.id, target, RpcTypes.Action, body.byteLength), body, origin)
                : exchange.route(target, peerFrame(firstId + i, side.id, target, RpcTypes.Action, body), origin));
            if (!routed) {
                stats.callsUndeliverable++;
                outcomes.push(exchange.refusal?.(target) ? 'unavailable' : registry.get(target) ? 'offline' : 'not-found');
                continue;
            }
            if (routed === 'busy') {
                outcomes.push('busy');
                this.gate.receiverBusy(target);
                continue;
            }
            outcomes.push(routed === 'forwarded' ? 'forwarded' : 'delivered');
            stats.callsRouted++;
            stats.framesRouted++;
            stats.bytesRouted += multicastCopySize(target, body);
            this.ledger.called(target);
            audit.recordCall({ peerId: side.peerId, session: side.sessionName, connectionId: side.connectionId, target, ...action });
        }
        side.writeFrame(multicastResultFrame(header.id, outcomes));
    }
}
