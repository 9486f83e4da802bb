import { GrantsApi, GrantTicket, RESOURCE_PATTERN, RIGHT_PATTERN, AccessDenied } from '@switchboard/protocol';
import { CallerContext } from '../../caller-context';
import { FeatureContext } from '../../feature';
import { HeldGrant, IssuedGrant } from './grant-entities';
import { GrantClaims, GrantSigner } from './grant-token';

/** What `decide` may answer: yes, no, or yes with fewer rights or a shorter life. */
export type GrantDecision = boolean | { rights?: string[], ttlMs?: number };

export interface ProtectOptions {
    /** Whether `caller` (its broker-verified ID) gets `rights` on the resource. */
    decide(caller: string, rights: string[]): GrantDecision | Promise<GrantDecision>;
    /** How long a grant lasts, in milliseconds (default: the feature's `ttlMs`, itself 1 hour by default). */
    ttlMs?: number;
}

export interface GrantsOptions {
    /** Default lifetime of a grant, in milliseconds (default 1 hour). */
    ttlMs: number;
}

export const defaultGrantsOptions: GrantsOptions = { ttlMs: 60 * 60 * 1000 };

/**
 * `peer.features.grants`: resource grants by handshake. This peer protects resources and decides who gets which
 * rights; another peer asks with `handshake` and gets a signed token bound to its verified ID, the resource, the
 * rights and an expiry. A controller checks a call in one line:
 *
 * ```ts
 * await this.grants.require(this.caller, token, `doc:${docId}`, 'read');
 * ```
 *
 * Every refusal is AccessDenied, with the reason: `grant-invalid` (not a token this peer signed), `grant-not-yours`
 * (issued to another peer), `grant-wrong-resource`, `grant-missing-right`, `grant-expired`, `grant-revoked`;
 * and `grant-refused` for a handshake the app declined (or a resource it does not protect).
 */
export class Grants {
    protected protections = new Map<string, ProtectOptions>();
    /** Revoked grant IDs, in memory so a check costs no query; loaded from storage when the peer starts. */
    protected revoked = new Set<string>();
    protected signer: GrantSigner;

    constructor(protected context: FeatureContext, protected options: GrantsOptions = defaultGrantsOptions) {
        this.signer = new GrantSigner(context.database);
    }

    /** Protects `resource` (replacing an earlier protection): handshakes for it go to `decide`. */
    protect(resource: string, options: ProtectOptions): this {
        if (!RESOURCE_PATTERN.test(resource)) throw new TypeError(`Invalid resource name ${JSON.stringify(resource)}: 1 to 128 letters, digits or ". _ : / -".`);
        this.protections.set(resource, options);
        return this;
    }

    /** Asks `peerId` for `rights` on its `resource`; the grant is also kept in this peer's storage (see `held`). */
    async handshake(peerId: string, resource: string, rights: string[], options: { timeout?: number } = {}): Promise<GrantTicket> {
        const ticket = await this.context.peer.to(peerId).controller<GrantsApi>(GrantsApi, { timeout: options.timeout }).handshake(resource, rights);
        const held = new HeldGrant(`${peerId}\n${resource}`, ticket.id, ticket.grantor, ticket.resource, ticket.rights, ticket.token, ticket.expiresAt);
        await this.context.database.write(async session => {
            await session.query(HeldGrant).filter({ key: held.key }).deleteMany();
            session.add(held);
        });
        return ticket;
    }

    /** The latest unexpired grant this peer holds from `peerId` on `resource` (kept across restarts). */
    async held(peerId: string, resource: string): Promise<GrantTicket | undefined> {
        const grant = await this.context.database.query(HeldGrant).filter({ key: `${peerId}\n${resource}` }).findOneOrUndefined();
        if (!grant || grant.expiresAt.getTime() <= this.context.clock()) return undefined;
        return { id: grant.id, token: grant.token, grantor: grant.grantor, holder: this.context.peer.id, resource: grant.resource, rights: grant.rights, expiresAt: grant.expiresAt };
    }

    /**
     * Checks that `token` lets the caller use `right` on `resource`: resolves with the grant's claims, or throws
     * AccessDenied with the reason. Pass the CallerContext of the call (the broker-verified caller).
     */
    async require(caller: CallerContext | string, token: string, resource: string, right: string): Promise<GrantClaims> {
        const callerId = typeof caller === 'string' ? caller : caller.peerId;
        const claims = typeof token === 'string' && token.length <= 4096 ? await this.signer.verify(token) : undefined;
        if (!claims || claims.grantor !== this.context.peer.id) throw denied('This is not a grant this peer issued. Ask for one with handshake().', 'grant-invalid');
        if (claims.holder !== callerId) throw denied(`This grant was issued to "${claims.holder}", not to "${callerId ?? 'an anonymous caller'}". Ask for your own with handshake().`, 'grant-not-yours');
        if (claims.resource !== resource) throw denied(`This grant is for "${claims.resource}", not "${resource}".`, 'grant-wrong-resource');
        if (!claims.rights.includes(right)) throw denied(`This grant gives ${claims.rights.join(', ')} on "${resource}", not "${right}". Ask for it with handshake().`, 'grant-missing-right');
        if (claims.expiresAt <= this.context.clock()) throw denied(`This grant on "${resource}" expired at ${new Date(claims.expiresAt).toISOString()}. Ask for a new one with handshake().`, 'grant-expired');
        if (this.revoked.has(claims.id)) throw denied(`This grant on "${resource}" was revoked.`, 'grant-revoked');
        return claims;
    }

    /** Revokes grants by ID, or all of a holder and/or a resource; effective for the next call. Returns how many. */
    async revoke(which: { id: string } | { holder?: string, resource?: string }): Promise<number> {
        const filter: Partial<Pick<IssuedGrant, 'id' | 'holder' | 'resource'>> = { ...which };
        const grants = (await this.context.database.query(IssuedGrant).filter(filter).find()).filter(grant => !grant.revokedAt);
        // In memory first: a call checked while the revocation is being stored is already refused.
        for (const grant of grants) this.revoked.add(grant.id);
        const now = new Date(this.context.clock());
        await this.context.database.write(async session => {
            for (const grant of grants) {
                grant.revokedAt = now;
                session.add(grant);
            }
        });
        return grants.length;
    }

    /** Grants this peer issued that are neither revoked nor expired. */
    async issued(filter: { holder?: string, resource?: string } = {}): Promise<IssuedGrant[]> {
        const grants = await this.context.database.query(IssuedGrant).filter(filter).find();
        return grants.filter(grant => !grant.revokedAt && grant.expiresAt.getTime() > this.context.clock());
    }

    // ---- lifecycle and the remote side --------------------------------------------------------------------------

    async started(): Promise<void> {
        // An expired grant is refused by its token alone: its record is no longer needed.
        await this.context.database.query(IssuedGrant).filter({ expiresAt: { $lt: new Date(this.context.clock()) } }).deleteMany();
        const revoked = await this.context.database.query(IssuedGrant).filter({ revokedAt: { $gt: new Date(0) } }).find();
        for (const grant of revoked) this.revoked.add(grant.id);
    }

    /** A handshake from `caller` (broker-verified): the app's `decide` says whether and what. */
    async answerHandshake(caller: string, resource: string, rights: string[]): Promise<GrantTicket> {
        const protection = this.protections.get(resource);
        const decision = protection ? await protection.decide(caller, [...rights]) : false;
        if (!decision) throw denied(`"${this.context.peer.id}" grants no ${rights.join(', ')} on "${resource}" to "${caller}".`, 'grant-refused');
        const granted = typeof decision === 'object' && decision.rights ? decision.rights.filter(right => RIGHT_PATTERN.test(right)) : rights;
        const ttlMs = (typeof decision === 'object' ? decision.ttlMs : undefined) ?? protection!.ttlMs ?? this.options.ttlMs;
        const now = this.context.clock();
        const claims: GrantClaims = { id: globalThis.crypto.randomUUID(), grantor: this.context.peer.id, holder: caller, resource, rights: [...new Set(granted)], expiresAt: now + ttlMs };
        const token = await this.signer.sign(claims);
        // Stored before the token leaves: a grant that exists anywhere can be listed and revoked here.
        await this.context.database.write(async session => session.add(new IssuedGrant(claims.id, caller, resource, claims.rights, new Date(claims.expiresAt), new Date(now))));
        return { id: claims.id, token, grantor: claims.grantor, holder: caller, resource, rights: claims.rights, expiresAt: new Date(claims.expiresAt) };
    }
}

function denied(message: string, reason: string): AccessDenied {
    const error = new AccessDenied(message, reason);
    error.stack = '';
    return error;
}
