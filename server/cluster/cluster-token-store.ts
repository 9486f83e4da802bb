import { cast, MaxLength, typeOf } from '@deepkit/type';
import type { BusKeyValue } from './bus/cluster-bus';
import { PeerToken } from '../registry/entities';
import { createSecret, hashSecret, PeerTokenStore, TokenGrant } from '../registry/token-store';
import { ClusterState } from './cluster-state';
import { isConflict } from './directory-entry';

/** A token as the bucket holds it, under `h.<sha-256 of the token>`. */
interface StoredToken {
    name: string & MaxLength<200>;
    peerIds: string[];
    allowTargets: string[];
    denyTargets: string[];
    admin: boolean;
    createdAt: Date;
    revokedAt?: Date;
}

const decoder = new TextDecoder();
/** Gets in flight at once for `liveHashes`. */
const PARALLEL_GETS = 64;

function hashKey(hash: string): string {
    return 'h.' + hash;
}

/** Token names are free text; KV keys are not. base64url is one-to-one and uses only characters a key may hold. */
function nameKey(name: string): string {
    return 'n.' + Buffer.from(name, 'utf8').toString('base64url');
}

/**
 * Peer tokens of a cluster in a JetStream KV bucket (`switchboard_<cluster>_tokens`): a token created by any
 * broker's CLI authenticates on every broker, and a revocation reaches every broker through a watch at once.
 *
 * Two keys a token: `n.<name>` → the token's hash, created if absent (one live token a name, even when two operators
 * race), and `h.<hash>` → the grant, which is what authentication reads (one get by the hash). The name is claimed
 * first: a create that dies between the two writes leaves a name without a grant, which authenticates nobody and
 * which the next create of that name replaces.
 */
export class ClusterTokenStore implements PeerTokenStore {
    constructor(protected state: ClusterState) {
    }

    async create(name: string, grant: TokenGrant): Promise<string> {
        if (!name || name.length > 200) throw new Error('A token name must have 1 to 200 characters.');
        const kv = await this.state.bucket('tokens');
        const token = createSecret('sbt_');
        const hash = hashSecret(token);
        const exists = new Error(`A token named "${name}" exists already. Revoke it first, or pick another name.`);
        const claimed = await kv.get(nameKey(name));
        try {
            if (claimed && claimed.operation === 'PUT') {
                const previousHash = decoder.decode(claimed.value);
                const previous = await this.read(kv, previousHash);
                if (previous && !previous.token.revokedAt) throw exists;
                await kv.update(nameKey(name), hash, claimed.revision);
                if (previous) await kv.delete(hashKey(previousHash), previous.revision).catch(() => undefined);
            } else {
                await kv.create(nameKey(name), hash);
            }
        } catch (error) {
            throw isConflict(error) ? exists : error;
        }
        const stored: StoredToken = {
            name, peerIds: grant.peerIds, allowTargets: grant.allowTargets ?? [], denyTargets: grant.denyTargets ?? [],
            admin: grant.admin ?? false, createdAt: new Date,
        };
        await kv.put(hashKey(hash), JSON.stringify(stored));
        return token;
    }

    async revoke(name: string): Promise<boolean> {
        if (!name) return false;
        const kv = await this.state.bucket('tokens');
        // A concurrent revoke of the same token is the only writer that can come between the read and the update.
        for (let attempt = 0; attempt < 3; attempt++) {
            const claimed = await kv.get(nameKey(name));
            if (!claimed || claimed.operation !== 'PUT') return false;
            const current = await this.read(kv, decoder.decode(claimed.value));
            if (!current || current.token.revokedAt) return false;
            current.token.revokedAt = new Date;
            try {
                await kv.update(hashKey(current.hash), JSON.stringify(current.token), current.revision);
                return true;
            } catch (error) {
                if (!isConflict(error)) throw error;
            }
        }
        return false;
    }

    async verify(token: string): Promise<PeerToken | undefined> {
        const hash = hashSecret(token);
        const current = await this.read(await this.state.bucket('tokens'), hash);
        return current && !current.token.revokedAt ? toPeerToken(hash, current.token) : undefined;
    }

    async liveHashes(hashes: string[]): Promise<Set<string>> {
        const kv = await this.state.bucket('tokens');
        const live = new Set<string>();
        for (let start = 0; start < hashes.length; start += PARALLEL_GETS) {
            await Promise.all(hashes.slice(start, start + PARALLEL_GETS).map(async hash => {
                const current = await this.read(kv, hash);
                if (current && !current.token.revokedAt) live.add(hash);
            }));
        }
        return live;
    }

    async list(): Promise<PeerToken[]> {
        const kv = await this.state.bucket('tokens');
        const hashes: string[] = [];
        for (const key of await kv.keys('h.>')) hashes.push(key.slice(2));
        const tokens: PeerToken[] = [];
        for (const hash of hashes) {
            const current = await this.read(kv, hash);
            if (current) tokens.push(toPeerToken(hash, current.token));
        }
        return tokens.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    }

    /**
     * Watches the grants for revocations (and deletions) from now on. The watch is rebuilt after every reconnect:
     * the old one may have stalled, or the store may be new. What happens while NATS is away, the broker's
     * `liveHashes` poll finds.
     */
    async followRevocations(revoked: (hash: string) => void): Promise<() => void> {
        let stopped = false;
        let watcher: { stop(): unknown } | undefined;
        const watch = async () => {
            const kv = await this.state.bucket('tokens');
            const iterator = await kv.watch({ key: 'h.>', updatesOnly: true });
            void watcher?.stop();
            watcher = iterator;
            if (stopped) return void iterator.stop();
            void (async () => {
                try {
                    for await (const update of iterator) {
                        const hash = update.key.slice(2);
                        if (update.operation !== 'PUT') revoked(hash);
                        else if (decode(update.value)?.revokedAt) revoked(hash);
                    }
                } catch {
                    // A watch that ends with the connection is rebuilt on reconnect.
                }
            })();
        };
        await watch();
        const stopListening = this.state.onReconnect(() => void watch().catch(() => undefined));
        return () => {
            stopped = true;
            stopListening();
            void watcher?.stop();
        };
    }

    protected async read(kv: BusKeyValue, hash: string): Promise<{ hash: string, token: StoredToken, revision: number } | undefined> {
        if (!/^[0-9a-f]{64}$/.test(hash)) return undefined;
        const stored = await kv.get(hashKey(hash));
        if (!stored || stored.operation !== 'PUT') return undefined;
        const token = decode(stored.value);
        return token && { hash, token, revision: stored.revision };
    }
}

/** Resolved once (see cluster-peer-records.ts: `cast<T>` inside a bare `catch {}` function lost T's runtime type). */
const storedTokenType = typeOf<StoredToken>();

/** Only brokers write the bucket, but a value that does not validate authenticates nobody. */
function decode(value: Uint8Array): StoredToken | undefined {
    try {
        return cast<StoredToken>(JSON.parse(decoder.decode(value)), undefined, undefined, undefined, storedTokenType);
    } catch {
        return undefined;
    }
}

function toPeerToken(hash: string, stored: StoredToken): PeerToken {
    const token = new PeerToken(stored.name);
    token.hash = hash;
    token.peerIds = stored.peerIds;
    token.allowTargets = stored.allowTargets;
    token.denyTargets = stored.denyTargets;
    token.admin = stored.admin;
    token.createdAt = stored.createdAt;
    token.revokedAt = stored.revokedAt;
    return token;
}
