import { QuotaExceeded } from '@switchboard/protocol';

/** What one sender has stored here: items and their bytes. */
export interface Usage {
    items: number;
    bytes: number;
}

/** The limits of one sender's storage on this peer. */
export interface SenderLimits {
    items: number;
    bytes: number;
}

/**
 * What each remote sender keeps stored on this peer (unread chat messages, payloads held as a relay), so a stranger
 * cannot fill the peer's storage. A sender's usage is read from storage once, on its first item since this process
 * started, then kept up to date here: a check costs no query, and concurrent items are reserved before they are
 * written, so a burst cannot slip past the limit.
 */
export class SenderQuota {
    protected usage = new Map<string, Usage>();
    protected loading = new Map<string, Promise<Usage>>();

    constructor(
        protected limits: () => SenderLimits,
        /** What `sender` has stored now, read from storage. */
        protected load: (sender: string) => Promise<Usage>,
        /** For the error: what the items are (`unread messages`, `held payloads`). */
        protected what: string,
        /** For the error: what the sender can do about it. */
        protected advice: string,
    ) {
    }

    /** Counts one item of `bytes` against `sender`, or throws QuotaExceeded. Release it if it is not stored after all. */
    async reserve(sender: string, bytes: number): Promise<void> {
        const usage = await this.of(sender);
        const { items, bytes: maxBytes } = this.limits();
        if (usage.items + 1 > items || usage.bytes + bytes > maxBytes) {
            const error = new QuotaExceeded(
                `This peer holds ${usage.items} ${this.what} (${usage.bytes} bytes) from "${sender}" already; the limit is ${items} and ${maxBytes} bytes per sender. ${this.advice}`,
                usage.items + 1 > items ? items : maxBytes,
            );
            error.stack = '';
            throw error;
        }
        usage.items++;
        usage.bytes += bytes;
    }

    /**
     * Counts one item of `bytes` about to be stored, without refusing it: for storage that makes room by dropping
     * the sender's oldest items instead. Release it if it is not stored after all. @returns whether the sender is
     * now over its limits.
     */
    async add(sender: string, bytes: number): Promise<boolean> {
        const usage = await this.of(sender);
        usage.items++;
        usage.bytes += bytes;
        return this.exceeds(sender);
    }

    /** Whether `sender` holds more than its limits allow (as far as this tally knows). */
    exceeds(sender: string): boolean {
        const usage = this.usage.get(sender);
        const { items, bytes } = this.limits();
        return !!usage && (usage.items > items || usage.bytes > bytes);
    }

    /** Items of `sender` that left storage (read, delivered, deleted) or were not stored after all. */
    release(sender: string, items: number, bytes: number): void {
        const usage = this.usage.get(sender);
        if (!usage) return;
        usage.items = Math.max(0, usage.items - items);
        usage.bytes = Math.max(0, usage.bytes - bytes);
        if (!usage.items && !this.loading.has(sender)) this.usage.delete(sender);
    }

    /** Forgets every tally (storage was cleared): each sender's usage is read again on its next item. */
    reset(): void {
        this.usage.clear();
    }

    protected async of(sender: string): Promise<Usage> {
        const known = this.usage.get(sender);
        if (known) return known;
        let loading = this.loading.get(sender);
        if (!loading) {
            loading = this.load(sender).then(usage => {
                this.usage.set(sender, usage);
                return usage;
            }).finally(() => this.loading.delete(sender));
            this.loading.set(sender, loading);
        }
        await loading;
        // A release between the load and now may have dropped the entry: keep counting from the loaded usage.
        let usage = this.usage.get(sender);
        if (!usage) this.usage.set(sender, usage = { items: 0, bytes: 0 });
        return usage;
    }
}

const utf8 = new TextEncoder();

/** Bytes of a stored text as UTF-8, what it costs on disk (TextEncoder: a browser peer has no Buffer). */
export function textBytes(text: string): number {
    return utf8.encode(text).length;
}
