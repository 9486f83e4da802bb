/** A set that keeps its most recently touched `capacity` entries: memory stays bounded whatever the peers do. */
export class RecentSet {
    protected entries = new Map<string, number>();

    constructor(protected capacity: number) {
    }

    has(key: string): boolean {
        return this.entries.has(key);
    }

    /** When `key` was last added (the clock's value), or undefined. */
    addedAt(key: string): number | undefined {
        return this.entries.get(key);
    }

    add(key: string, at = 0): void {
        this.entries.delete(key);
        this.entries.set(key, at);
        if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    }

    delete(key: string): void {
        this.entries.delete(key);
    }
}

/** Decides whether this app wants a link to `peerId`; `contacted` says whether it called or was called by it. */
export type LinkPolicy = (peerId: string, contacted: boolean) => boolean;

/** The default: links only with peers this one has called or been called by (the broker's calls, not signalling). */
export const contactsOnly: LinkPolicy = (peerId, contacted) => contacted;

/**
 * What this peer remembers to decide about links: the peers it has talked to, the link IDs it has seen (an offer
 * under a seen ID is a replay), and when it may try again to link a peer that refused or failed.
 */
export class LinkMemory {
    protected contacts: RecentSet;
    protected seenLinkIds: RecentSet;
    protected failures: RecentSet;

    constructor(capacity: number, protected retryAfterMs: number) {
        this.contacts = new RecentSet(capacity);
        this.seenLinkIds = new RecentSet(capacity * 4);
        this.failures = new RecentSet(capacity);
    }

    contacted(peerId: string): void {
        if (!this.contacts.has(peerId)) this.contacts.add(peerId);
    }

    hasContacted(peerId: string): boolean {
        return this.contacts.has(peerId);
    }

    /** Records `linkId`; false when it was seen before. */
    firstSight(linkId: string): boolean {
        if (this.seenLinkIds.has(linkId)) return false;
        this.seenLinkIds.add(linkId);
        return true;
    }

    failed(peerId: string): void {
        this.failures.add(peerId, performance.now());
    }

    succeeded(peerId: string): void {
        this.failures.delete(peerId);
    }

    /** Whether an automatic attempt to link `peerId` may start (none failed within `retryAfterMs`). */
    mayRetry(peerId: string): boolean {
        const at = this.failures.addedAt(peerId);
        return at === undefined || performance.now() - at >= this.retryAfterMs;
    }
}
