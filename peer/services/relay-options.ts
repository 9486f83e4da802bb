export interface RelayOptions {
    /** Payloads one sender may have held here at once (default 100). */
    quotaPerSender: number;
    /** Bytes (UTF-8 bodies) of the payloads one sender may have held here at once (default 10 MiB). */
    bytesPerSender: number;
    /**
     * Payloads from one original sender this peer keeps in its inbox (`inbox()`, default 1,000); past it, or past
     * `inboxBytesPerSender` (default 10 MiB), that sender's oldest are dropped (`received$` showed them already).
     */
    inboxPerSender: number;
    inboxBytesPerSender: number;
    /** TTL when the sender gives none, in seconds. */
    defaultTtlSeconds: number;
    /**
     * The relays this peer uses: only they may hand it payloads from someone else (vouching for the original
     * sender they verified) and report deliveries of its stored payloads. Exact IDs or `prefix*` patterns. Anyone
     * may still deliver its own payloads directly.
     */
    trustedRelays: string[];
}

export const defaultRelayOptions: RelayOptions = { quotaPerSender: 100, bytesPerSender: 10 * 1024 * 1024, inboxPerSender: 1000, inboxBytesPerSender: 10 * 1024 * 1024, defaultTtlSeconds: 7 * 24 * 3600, trustedRelays: [] };
