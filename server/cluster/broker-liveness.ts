/** What the exchange knows of another broker. */
interface Heard {
    /** When its last heartbeat arrived (or when this broker first noticed it in the directory). */
    at: number;
    dead: boolean;
    /** Heard since this broker's own NATS link came back (frames published to it before may have had no subscriber). */
    unconfirmed?: boolean;
    /** Its link epoch, from its heartbeats: a new one means its NATS link was interrupted. */
    epoch?: number;
}

/**
 * Which brokers are alive, by heartbeats. nats-server 2.9 ignores per-key TTLs and says nothing when a bucket's
 * max-age removes an entry, so a broker's death cannot be read from the KV: a broker that sent no heartbeat for
 * `deathTimeoutMs` (about three missed beats) is dead.
 */
export class BrokerLiveness {
    protected brokers = new Map<string, Heard>();

    constructor(protected selfId: string, protected deathTimeoutMs: number) {
    }

    /** A heartbeat. @returns true when the broker was dead and is back. */
    heard(brokerId: string, now: number): boolean {
        if (brokerId === this.selfId) return false;
        const known = this.brokers.get(brokerId);
        if (!known) {
            this.brokers.set(brokerId, { at: now, dead: false });
            return false;
        }
        known.at = now;
        known.unconfirmed = false;
        if (!known.dead) return false;
        known.dead = false;
        return true;
    }

    /** A broker named in the directory: one never heard gets the full timeout from now before it counts as dead. */
    noticed(brokerId: string, now: number): void {
        if (brokerId !== this.selfId && !this.brokers.has(brokerId)) this.brokers.set(brokerId, { at: now, dead: false });
    }

    /**
     * This broker was cut off itself: silence during the outage says nothing about the others, and none of them is
     * known to be subscribed again until it is heard (core NATS drops a frame that finds no subscriber, silently).
     */
    restartClocks(now: number): void {
        for (const heard of this.brokers.values()) {
            heard.at = now;
            heard.unconfirmed = true;
        }
    }

    /** Frames may go to it: alive, and heard since this broker's own link last came back. */
    reachable(brokerId: string): boolean {
        const known = this.brokers.get(brokerId);
        return !known || (!known.dead && !known.unconfirmed);
    }

    /** A frame came from it: it is connected, so subscribed again. */
    confirm(brokerId: string): void {
        const known = this.brokers.get(brokerId);
        if (known?.unconfirmed) known.unconfirmed = false;
    }

    /** Waiting to hear it after this broker's link came back. */
    unconfirmed(brokerId: string): boolean {
        return this.brokers.get(brokerId)?.unconfirmed ?? false;
    }

    /** Records its link epoch. @returns true when it changed: its NATS link was interrupted since its last heartbeat. */
    epochChanged(brokerId: string, epoch: number): boolean {
        const known = this.brokers.get(brokerId);
        if (!known) return false;
        const changed = known.epoch !== undefined && known.epoch !== epoch;
        known.epoch = epoch;
        return changed;
    }

    /** This broker's loop stood still for `ms`: that time counts as heard from everyone. */
    discount(ms: number): void {
        for (const heard of this.brokers.values()) if (!heard.dead) heard.at += ms;
    }

    /** @returns the brokers that died since the last check */
    check(now: number): string[] {
        const died: string[] = [];
        for (const [brokerId, heard] of this.brokers) {
            if (heard.dead) {
                // Listed as dead for a while (status pages), then forgotten.
                if (now - heard.at > this.deathTimeoutMs * 20) this.brokers.delete(brokerId);
                continue;
            }
            if (now - heard.at <= this.deathTimeoutMs) continue;
            heard.dead = true;
            died.push(brokerId);
        }
        return died;
    }

    /** It said it leaves (a clean stop, after releasing its peers): listed as not alive at once. @returns whether it was alive */
    left(brokerId: string, now: number): boolean {
        const known = this.brokers.get(brokerId);
        if (known?.dead) return false;
        this.brokers.set(brokerId, { at: now, dead: true });
        return true;
    }

    isDead(brokerId: string): boolean {
        return this.brokers.get(brokerId)?.dead ?? false;
    }

    deadBrokers(): string[] {
        return [...this.brokers].filter(([, heard]) => heard.dead).map(([brokerId]) => brokerId);
    }

    list(): { brokerId: string, alive: boolean, lastSeen: Date }[] {
        return [...this.brokers].map(([brokerId, heard]) => ({ brokerId, alive: !heard.dead, lastSeen: new Date(heard.at) }));
    }
}
