import { PeerOwner } from '../exchange/peer-exchange';
import { KeyConflict } from './bus/cluster-bus';

/** Where a peer ID is live in the cluster: one KV entry per ID, deleted (with its revision) when it goes offline. */
export interface DirectoryEntry {
    peerId: string;
    brokerId: string;
    connectionId: string;
    /** Milliseconds since the epoch. */
    since: number;
    owner: PeerOwner;
    capabilities: string[];
    /** KV revision of the entry; -1 while a rebuilt watch has not confirmed it yet. */
    revision: number;
    /**
     * Set while the entry is a claim this broker decided during a NATS outage and has not written yet: the revision
     * of the entry it replaces (0: none). Reconciling writes it with a compare-and-set on that revision.
     */
    pendingBase?: number;
    /** `connectionId` as bytes (error replies name it as their source), made when first needed. */
    connectionBytes?: Uint8Array;
}

/** The stored form: short keys, JSON (entries change on register/announce/offline only, never per frame). */
interface StoredEntry {
    b: string;
    c: string;
    s: number;
    o: string;
    h?: string;
    k: string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeEntry(entry: DirectoryEntry): Uint8Array {
    const stored: StoredEntry = { b: entry.brokerId, c: entry.connectionId, s: entry.since, o: entry.owner.session, h: entry.owner.reclaimSecretHash, k: entry.capabilities };
    return encoder.encode(JSON.stringify(stored));
}

/** Undefined when the value is not an entry (the bucket is shared by the brokers of a cluster only, but be safe). */
export function decodeEntry(peerId: string, value: Uint8Array, revision: number): DirectoryEntry | undefined {
    try {
        const stored = JSON.parse(decoder.decode(value)) as Partial<StoredEntry>;
        if (typeof stored.b !== 'string' || typeof stored.c !== 'string' || typeof stored.o !== 'string') return undefined;
        const capabilities = Array.isArray(stored.k) ? stored.k.filter((item): item is string => typeof item === 'string') : [];
        return {
            peerId,
            brokerId: stored.b,
            connectionId: stored.c,
            since: typeof stored.s === 'number' ? stored.s : Date.now(),
            owner: { session: stored.o, reclaimSecretHash: typeof stored.h === 'string' ? stored.h : undefined },
            capabilities,
            revision,
        };
    } catch {
        return undefined;
    }
}

export function connectionBytesOf(entry: DirectoryEntry): Uint8Array {
    return entry.connectionBytes ??= Buffer.from(entry.connectionId, 'hex');
}

/** A compare-and-set that lost: the key is not at the revision the writer read. */
export function isConflict(error: unknown): boolean {
    return error instanceof KeyConflict;
}

/** The owner test of BrokerConnection.registerPeer: the reclaim secret (open mode), else the token's session. */
export function sameOwner(a: PeerOwner, b: PeerOwner | undefined): boolean {
    if (!b) return false;
    return a.reclaimSecretHash ? a.reclaimSecretHash === b.reclaimSecretHash : a.session === b.session;
}
