import { RpcTypes } from '@deepkit/rpc';
import { AccessDenied, PeerNotFound, PeerOffline, SwitchboardError } from '@switchboard/protocol';
import { FrameHeader } from '@switchboard/protocol/internal';
import { ActionName, actionNameOf, errorForClient, errorFrame, sameBytes, SOURCE_OFFSET } from '../frames';
import { CallLedger } from './call-ledger';
import { ConnectionSide } from './connection-side';
import { FrameGate } from './frame-gate';

/**
 * Routes a connection's requests to other peers from their header bytes (no body is decoded on this path): refuses
 * a forged source, asks the security class, answers an undeliverable request at once (PeerNotFound/PeerOffline) and
 * audits each call.
 */
export class RequestRouter {
    constructor(protected side: ConnectionSide, protected gate: FrameGate, protected ledger: CallLedger) {
    }

    route(header: FrameHeader, frame: Uint8Array): void {
        const side = this.side;
        const { stats, exchange, registry } = side.services;
        const target = header.peerId;
        if (!sameBytes(frame, SOURCE_OFFSET, side.id)) {
            stats.callsDenied++;
            return this.gate.violation(header.id, new AccessDenied('The source of a peer message must be your own connection id (as returned by the ClientId handshake).', 'forged-source'), target);
        }
        try {
            side.security.assertMaySend(side.session(), target);
        } catch (error) {
            stats.callsDenied++;
            return this.gate.refuse(header.id, error as SwitchboardError, { target });
        }

        const routed = exchange.route(target, frame, side.origin());
        if (routed === 'busy') return this.gate.receiverBusy(target);
        if (!routed) {
            const known = registry.get(target);
            // The exchange may know a cause other than the target's absence (ClusterUnavailable: the cluster's link).
            const error = exchange.refusal?.(target) ?? (known ? PeerOffline.for(target, known.lastSeen) : PeerNotFound.for(target));
            side.writeFrame(errorFrame(header.id, errorForClient(error, side.typedErrors)));
            stats.refused(error.code);
            // The first message of a call may be its type request; either way the caller tried to call.
            if (header.type === RpcTypes.Action || header.type === RpcTypes.ActionType) {
                stats.callsUndeliverable++;
                this.recordCall(target, header.type, frame, header.bodyOffset, error.code);
            }
            return;
        }

        stats.framesRouted++;
        stats.bytesRouted += frame.byteLength;
        this.ledger.called(target);
        if (header.type === RpcTypes.Action) {
            stats.callsRouted++;
            this.recordCall(target, header.type, frame, header.bodyOffset);
        }
    }

    /** The audit trail's view of a call: names read from the body's bytes, not a decoded body (see AuditLog.recordCall). */
    protected recordCall(target: string, type: number, frame: Uint8Array, bodyOffset: number, reason?: string): ActionName {
        // Action and ActionType bodies both start with controller and method.
        const action = type === RpcTypes.Action || type === RpcTypes.ActionType ? actionNameOf(frame, bodyOffset) : {};
        const side = this.side;
        side.services.audit.recordCall({ peerId: side.peerId, session: side.sessionName, connectionId: side.connectionId, target, ...action, reason });
        return action;
    }
}
