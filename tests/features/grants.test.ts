import { rpc } from '@deepkit/rpc';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { CallerContext, Peer } from '../../peer';
import { Grants, grants } from '../../peer/features/grants';
import { GrantToken } from '../../shared/grants-api';
import { eventually, Resources } from '../helpers';

/** An app's controller: one line checks the grant. */
@rpc.controller('test/docs')
class DocsController {
    static calls = 0;

    constructor(protected grants: Grants, protected caller: CallerContext) {
    }

    @rpc.action()
    async read(docId: string, token: GrantToken): Promise<string> {
        await this.grants.require(this.caller, token, `doc:${docId}`, 'read');
        DocsController.calls++;
        return `contents of ${docId}`;
    }
}

const docs = (peer: Peer<any>) => peer.to('alice').controller<DocsController>('test/docs');

describe('resource grants', () => {
    const resources = new Resources();
    let directory: string;
    let now: number;
    beforeEach(() => {
        directory = mkdtempSync(join(tmpdir(), 'grants-'));
        now = Date.parse('2026-06-01T12:00:00Z');
    });
    afterEach(async () => {
        await resources.closeAll();
        rmSync(directory, { recursive: true, force: true });
    });

    async function start(url: string, id: string, storage?: string) {
        const peer = resources.add(await Peer.connect({
            url, id, storage, clock: () => now, features: { grants: grants({ ttlMs: 60_000 }) }, expose: [[DocsController, 'test/docs']],
        }), p => p.close());
        peer.features.grants.protect('doc:1', { decide: (caller, rights) => caller === 'bob' && rights.every(right => right === 'read') });
        return peer;
    }

    it('gives a token bound to its holder: another peer presenting it is refused', async () => {
        const { url } = await resources.broker();
        const alice = await start(url, 'alice');
        const bob = await start(url, 'bob');
        const carol = await start(url, 'carol');

        const grant = await bob.features.grants.handshake('alice', 'doc:1', ['read']);
        expect(grant).toMatchObject({ grantor: 'alice', holder: 'bob', resource: 'doc:1', rights: ['read'] });
        expect(await docs(bob).read('1', grant.token)).toBe('contents of 1');
        expect((await bob.features.grants.held('alice', 'doc:1'))?.token).toBe(grant.token);

        await expect(docs(carol).read('1', grant.token)).rejects.toMatchObject({ code: 'ACCESS_DENIED', reason: 'grant-not-yours' });
        await expect(carol.features.grants.handshake('alice', 'doc:1', ['read'])).rejects.toMatchObject({ reason: 'grant-refused' });
        await expect(bob.features.grants.handshake('alice', 'doc:1', ['write'])).rejects.toMatchObject({ reason: 'grant-refused' });
        await expect(docs(bob).read('2', grant.token)).rejects.toMatchObject({ reason: 'grant-wrong-resource' });

        // Claims altered by the holder (a longer life) no longer match the signature.
        const [prefix, body, signature] = grant.token.split('.');
        const claims = JSON.parse(Buffer.from(body, 'base64url').toString());
        const forged = `${prefix}.${Buffer.from(JSON.stringify({ ...claims, expiresAt: claims.expiresAt * 2 })).toString('base64url')}.${signature}`;
        await expect(docs(bob).read('1', forged)).rejects.toMatchObject({ reason: 'grant-invalid' });
        expect(await alice.features.grants.issued()).toHaveLength(1);
    });

    it('refuses an expired token', async () => {
        const { url } = await resources.broker();
        await start(url, 'alice');
        const bob = await start(url, 'bob');
        const grant = await bob.features.grants.handshake('alice', 'doc:1', ['read']);
        expect(await docs(bob).read('1', grant.token)).toBe('contents of 1');
        now += 60_000;
        await expect(docs(bob).read('1', grant.token)).rejects.toMatchObject({ code: 'ACCESS_DENIED', reason: 'grant-expired' });
    });

    it('refuses the next call after a revocation, while the holder keeps calling', async () => {
        const { url } = await resources.broker();
        const alice = await start(url, 'alice');
        const bob = await start(url, 'bob');
        const grant = await bob.features.grants.handshake('alice', 'doc:1', ['read']);

        let revoked = false;
        let servedAfterRevocation = 0;
        const calling = (async () => {
            for (;;) {
                const startedAfter = revoked;
                await docs(bob).read('1', grant.token);
                if (startedAfter) servedAfterRevocation++;
            }
        })();
        const before = DocsController.calls;
        await eventually(() => DocsController.calls >= before + 3);
        expect(await alice.features.grants.revoke({ holder: 'bob', resource: 'doc:1' })).toBe(1);
        revoked = true;

        await expect(calling).rejects.toMatchObject({ code: 'ACCESS_DENIED', reason: 'grant-revoked' });
        expect(servedAfterRevocation).toBe(0);
    });

    it('keeps its grants and revocations across a restart of the granting peer', async () => {
        const { url } = await resources.broker();
        const storage = join(directory, 'alice.sqlite');
        const alice = await start(url, 'alice', storage);
        const bob = await start(url, 'bob');
        const kept = await bob.features.grants.handshake('alice', 'doc:1', ['read']);
        const dropped = await bob.features.grants.handshake('alice', 'doc:1', ['read']);
        await alice.features.grants.revoke({ id: dropped.id });
        await alice.close();

        await start(url, 'alice', storage);
        expect(await docs(bob).read('1', kept.token)).toBe('contents of 1');
        await expect(docs(bob).read('1', dropped.token)).rejects.toMatchObject({ reason: 'grant-revoked' });
    });
});
