import { timingSafeEqual } from 'crypto';
import { AccessDenied, NotRegistered, PeerReplaced, SwitchboardError, assertValidPeerId, Registration } from '@switchboard/protocol';
import { createSecret, hashSecret } from '../registry/token-store';
import { CallLedger } from './call-ledger';
import { CloseCode, ConnectionSide } from './connection-side';

/**
 * The peer ID one connection holds: registering it (ownership, reclaim secrets, takeover by its owner),
 * deregistering it, and giving it up when its owner took it over on another connection.
 */
export class Registrar {
    /** The ID this connection deregistered last: its callers' pending requests still fail when it closes. */
    deregisteredAs?: string;
    /**
     * The ID whose registration is on its way: a cluster exchange may hear of a newer holder (its directory watch)
     * after it counted this connection as the holder but before register() has returned here, and tells it then.
     */
    protected registering?: { peerId: string, replaced: boolean };

    constructor(protected side: ConnectionSide, protected ledger: CallLedger) {
    }

    /**
     * Registers this connection as `peerId`. A live ID may be taken over only by its owner: the same token (token
     * mode) or the holder of its reclaim secret (open mode) — that is a reconnect racing the broker's notice of the
     * old connection's death. Anyone else gets PeerIdTaken; so does anyone but the owner within `peerIdGraceMs` of
     * the owner's connection being lost (a crash, a cut, a kick), while a clean deregister frees the ID at once.
     */
    async register(peerId: string, reclaimSecret?: string): Promise<Registration> {
        const side = this.side;
        const { config, exchange, registry, stats } = side.services;
        const session = side.session();
        try {
            assertValidPeerId(peerId);
            if (side.peerId === peerId) return { peerId, tookOver: false };
            if (side.peerId) {
                throw new AccessDenied(`This connection is registered as "${side.peerId}" already; deregister it first.`, 'already-registered');
            }
            side.security.assertMayRegister(session, peerId);
            const record = registry.get(peerId);
            const live = exchange.lookup(peerId);
            // A live ID's owner is kept by the exchange, where every broker of a cluster sees it (its broker may have
            // died); an offline ID's last owner by the registry.
            const claimed = exchange.ownerOf(peerId) ?? (record && { session: record.owner, reclaimSecretHash: record.reclaimSecretHash });
            const owner = config.auth === 'token'
                ? claimed?.session === side.sessionName
                : !!reclaimSecret && !!claimed?.reclaimSecretHash && sameSecret(hashSecret(reclaimSecret), claimed.reclaimSecretHash);
            const secret = config.auth === 'open' ? (owner && reclaimSecret ? reclaimSecret : createSecret('sbr_')) : undefined;
            const reclaimSecretHash = secret && hashSecret(secret);
            const claimant = { session: side.sessionName, reclaimSecretHash: reclaimSecret ? hashSecret(reclaimSecret) : undefined };
            const registering = this.registering = { peerId, replaced: false };
            try {
                await exchange.register(peerId, side.connectionId, { takeover: owner, owner: { session: side.sessionName, reclaimSecretHash }, claimant, graceMs: config.peerIdGraceMs });
            } finally {
                this.registering = undefined;
            }
            // Replaced before register() returned: the connection is closed as replaced, and holds nothing.
            if (registering.replaced) throw PeerReplaced.for(peerId);
            side.peerId = peerId;
            registry.setOwner(peerId, side.sessionName, reclaimSecretHash);
            const tookOver = !!live && owner;
            stats.registrations++;
            side.record(tookOver ? 'takeover' : 'register', {});
            return { peerId, reclaimSecret: secret, tookOver };
        } catch (error) {
            if (error instanceof SwitchboardError) {
                stats.refused(error.code);
                side.record('denied', { target: peerId, reason: error.code });
            }
            throw error;
        }
    }

    async deregister(): Promise<void> {
        const side = this.side;
        const peerId = side.peerId;
        if (!peerId) throw new NotRegistered();
        side.peerId = undefined;
        this.deregisteredAs = peerId;
        // The calls it still owes end now, as on a disconnect: once the ID is gone no answer is awaited. A second
        // sweep after the exchange let go of the ID ends the calls delivered while it did.
        this.ledger.failUnanswered(peerId, 'deregistered before answering');
        try {
            await side.services.exchange.deregister(peerId, side.connectionId);
        } finally {
            this.ledger.failUnanswered(peerId, 'deregistered before answering');
        }
        side.record('deregister', { peerId });
    }

    /** Another connection of the same owner took `peerId` over: this one lets go of it and closes. */
    replaced(peerId: string): void {
        const side = this.side;
        const registering = this.registering?.peerId === peerId ? this.registering : undefined;
        if (side.peerId !== peerId && !registering) return;
        if (registering) registering.replaced = true;
        side.record('takeover', { reason: 'replaced-by-owner' });
        side.peerId = undefined;
        // The code tells the SDK it was replaced, not cut off: it stops instead of taking the ID back.
        side.transport().closeWith?.(CloseCode.replaced, 'replaced: another client took over this peer ID with its reclaim secret or token');
        side.close();
    }
}

function sameSecret(a: string, b: string): boolean {
    return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
