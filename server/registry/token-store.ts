import { createHash, randomBytes } from 'crypto';
import { Database } from '@deepkit/orm';
import { PeerToken } from './entities';

export interface TokenGrant {
    peerIds: string[];
    allowTargets?: string[];
    denyTargets?: string[];
    admin?: boolean;
}

export function hashSecret(secret: string): string {
    return createHash('sha256').update(secret).digest('hex');
}

/** Makes a secret a person can paste: 256 random bits, URL-safe, with a prefix that says what it is. */
export function createSecret(prefix: string): string {
    return prefix + randomBytes(32).toString('base64url');
}

/**
 * Where peer tokens live: this broker's SQLite (TokenStore) or, in a cluster, JetStream KV
 * (server/cluster/cluster-token-store.ts), where a token made on one broker's CLI works on every broker.
 */
export interface PeerTokenStore {
    /** Returns the token itself; it is not stored and cannot be shown again. */
    create(name: string, grant: TokenGrant): Promise<string>;

    /** @returns false when no live token has that name. */
    revoke(name: string): Promise<boolean>;

    /** The live token's record, fresh from the store: a revocation applies to the next connection at once. */
    verify(token: string): Promise<PeerToken | undefined>;

    /** Which of these tokens (by `PeerToken.hash`) are still live: not revoked, not replaced. */
    liveHashes(hashes: string[]): Promise<Set<string>>;

    list(): Promise<PeerToken[]>;

    /**
     * Tells `revoked` the hash of each token revoked from now on, wherever it was revoked; resolves once it listens.
     * Absent where the store cannot tell (SQLite written by another process): the broker polls `liveHashes` then.
     */
    followRevocations?(revoked: (hash: string) => void): Promise<() => void>;
}

/** Peer tokens for token mode in SQLite, created and revoked from the CLI. */
export class TokenStore implements PeerTokenStore {
    constructor(protected database: Database) {
    }

    async create(name: string, grant: TokenGrant): Promise<string> {
        const existing = await this.database.query(PeerToken).filter({ name }).findOneOrUndefined();
        if (existing && !existing.revokedAt) throw new Error(`A token named "${name}" exists already. Revoke it first, or pick another name.`);
        if (existing) await this.database.remove(existing);
        const token = createSecret('sbt_');
        const record = new PeerToken(name);
        record.hash = hashSecret(token);
        record.peerIds = grant.peerIds;
        record.allowTargets = grant.allowTargets ?? [];
        record.denyTargets = grant.denyTargets ?? [];
        record.admin = grant.admin ?? false;
        await this.database.persist(record);
        return token;
    }

    async revoke(name: string): Promise<boolean> {
        const record = await this.database.query(PeerToken).filter({ name }).findOneOrUndefined();
        if (!record || record.revokedAt) return false;
        record.revokedAt = new Date;
        await this.database.persist(record);
        return true;
    }

    /** Asks the database on every call, so a revocation from the CLI applies to the next connection at once. */
    async verify(token: string): Promise<PeerToken | undefined> {
        const record = await this.database.query(PeerToken).filter({ hash: hashSecret(token) }).findOneOrUndefined();
        return record && !record.revokedAt ? record : undefined;
    }

    /** One query per 500 hashes: the broker asks this every few seconds for the tokens of its live connections. */
    async liveHashes(hashes: string[]): Promise<Set<string>> {
        const live = new Set<string>();
        for (let start = 0; start < hashes.length; start += 500) {
            const rows = await this.database.query(PeerToken).filter({ hash: { $in: hashes.slice(start, start + 500) } }).select('hash', 'revokedAt').find();
            for (const row of rows) if (!row.revokedAt) live.add(row.hash);
        }
        return live;
    }

    async list(): Promise<PeerToken[]> {
        return this.database.query(PeerToken).orderBy('name').find();
    }
}
