import { PeerOwner } from './peer-exchange';

/** Holds kept at most; past it the oldest goes first (a flood of lost connections must not grow memory). */
const MAX_HOLDS = 100_000;

interface Hold {
    owner: PeerOwner;
    until: number;
}

/**
 * Peer IDs whose connection was lost, held for their owner for a grace period: a crash, a network cut or a kick must
 * not hand the ID to whoever registers it next. Expired holds are dropped as new ones come (holds of one grace period
 * expire in the order they were made), so churn cannot grow this beyond the IDs lost within one grace period, and
 * never beyond MAX_HOLDS.
 */
export class HeldPeerIds {
    protected holds = new Map<string, Hold>();

    /** Holds `peerId` for `owner` for `graceMs`; returns until when. */
    hold(peerId: string, owner: PeerOwner, graceMs: number): Date {
        this.dropExpired();
        if (this.holds.size >= MAX_HOLDS) this.holds.delete(this.holds.keys().next().value!);
        const until = Date.now() + graceMs;
        // Re-inserted at the end, so the map stays in expiry order for one grace period.
        this.holds.delete(peerId);
        this.holds.set(peerId, { owner, until });
        return new Date(until);
    }

    /** Until when `peerId` is held; undefined when it is not (or no longer) held. */
    until(peerId: string): Date | undefined {
        const hold = this.current(peerId);
        return hold && new Date(hold.until);
    }

    ownerOf(peerId: string): PeerOwner | undefined {
        return this.current(peerId)?.owner;
    }

    release(peerId: string): void {
        this.holds.delete(peerId);
    }

    clear(): void {
        this.holds.clear();
    }

    protected current(peerId: string): Hold | undefined {
        const hold = this.holds.get(peerId);
        if (!hold) return;
        if (hold.until > Date.now()) return hold;
        this.holds.delete(peerId);
    }

    protected dropExpired(): void {
        const now = Date.now();
        for (const [peerId, hold] of this.holds) {
            if (hold.until > now) break;
            this.holds.delete(peerId);
        }
    }
}
