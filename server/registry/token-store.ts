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

/** Peer tokens for token mode, created and revoked from the CLI. */
export class TokenStore {
    constructor(protected database: Database) {
    }

    /** Returns the token itself; it is not stored and cannot be shown again. */
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

    /** @returns false when no live token has that name. */
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

    /**
     * Which of these tokens are still live (not revoked, not replaced). One query per 500 ids: the broker asks this
     * every few seconds for the tokens of its live connections.
     */
    async liveIds(ids: number[]): Promise<Set<number>> {
        const live = new Set<number>();
        for (let start = 0; start < ids.length; start += 500) {
            const rows = await this.database.query(PeerToken).filter({ id: { $in: ids.slice(start, start + 500) } }).select('id', 'revokedAt').find();
            for (const row of rows) if (!row.revokedAt) live.add(row.id);
        }
        return live;
    }

    async list(): Promise<PeerToken[]> {
        return this.database.query(PeerToken).orderBy('name').find();
    }
}
