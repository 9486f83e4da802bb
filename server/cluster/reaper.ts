import { probeKey, reaperLockKey } from './cluster-names';
import { Directory } from './directory';
import { BrokerLiveness } from './broker-liveness';

/**
 * Deletes a dead broker's directory entries, but only on evidence that survives a stall of THIS broker: heartbeats
 * missed while this broker was frozen say nothing (see LoopStallWatch), so before reaping, the dead broker's probe key
 * on NATS (rewritten by every live broker on each heartbeat) must stay at the same revision for a full death timeout
 * measured on this broker's own clock, with no stall or NATS blip of this broker in between. The store's revision is
 * kept by NATS, not in this broker's memory, so a frozen reaper cannot mistake its own silence for another's.
 *
 * One broker reaps (KV create on a lock key); a stale lock (its reaper died) expires.
 */
export class Reaper {
    protected reaping = new Set<string>();
    protected waits = new Set<() => void>();
    protected stopped = false;

    constructor(
        protected directory: Directory,
        protected liveness: BrokerLiveness,
        protected selfId: string,
        protected deathTimeoutMs: number,
        /** Counts this broker's own stalls and NATS blips: a change during the wait voids the evidence. */
        protected disturbances: () => number,
    ) {
    }

    get busy(): boolean {
        return this.reaping.size > 0;
    }

    /** @returns true when the entries were deleted by this broker */
    async reap(brokerId: string): Promise<boolean> {
        if (this.stopped || this.reaping.has(brokerId) || !this.directory.ready) return false;
        this.reaping.add(brokerId);
        try {
            if (!await this.silentOnNats(brokerId)) return false;
            const lock = reaperLockKey(brokerId);
            if (!await this.directory.claim(lock, this.selfId)) {
                const holder = await this.directory.readKey(lock);
                if (holder && Date.now() - holder.created.getTime() > this.deathTimeoutMs * 3) await this.directory.deleteKey(lock, holder.revision);
                return false;
            }
            try {
                const victims = [...this.directory.entries.values()].filter(entry => entry.brokerId === brokerId && entry.revision > 0);
                await Promise.all(victims.map(entry => this.directory.serial(entry.peerId, () => this.directory.remove(entry.peerId, entry.revision)).catch(() => undefined)));
            } finally {
                await this.directory.deleteKey(lock).catch(() => undefined);
            }
            return true;
        } catch {
            // NATS went away mid-way; the next tick tries again.
            return false;
        } finally {
            this.reaping.delete(brokerId);
        }
    }

    stop(): void {
        this.stopped = true;
        for (const wake of this.waits) wake();
    }

    /** The broker's probe did not move on NATS for a whole death timeout of this broker's undisturbed time. */
    protected async silentOnNats(brokerId: string): Promise<boolean> {
        const disturbances = this.disturbances();
        const before = await this.directory.readKey(probeKey(brokerId));
        await this.wait(this.deathTimeoutMs);
        if (this.stopped || this.disturbances() !== disturbances || !this.liveness.isDead(brokerId)) return false;
        const after = await this.directory.readKey(probeKey(brokerId));
        return (after?.revision ?? 0) === (before?.revision ?? 0);
    }

    protected wait(ms: number): Promise<void> {
        return new Promise(resolve => {
            const wake = () => {
                clearTimeout(timer);
                this.waits.delete(wake);
                resolve();
            };
            const timer = setTimeout(wake, ms);
            timer.unref?.();
            this.waits.add(wake);
        });
    }
}
