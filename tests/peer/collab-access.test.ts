import { firstValueFrom } from 'rxjs';
import { AccessDenied, CollabApi } from '../../shared';
import { CollabDocRecord, CollabUpdate } from '../../peer/storage/entities';
import { startSwitchboard } from '../../testing/test-kit';
import { collect } from '../helpers';
import { peerInternals } from '../../peer/internal';

describe('collaborative documents are shared only with invited collaborators', () => {
    it('a stranger who knows the document id can neither read, write, follow nor list it; the app sees each refusal', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob', 'mallory'] });
        const notes = await kit.peer('alice').collab.open('notes', { collaborators: ['bob'] });
        notes.text.insert(0, 'private plans');
        const refusals = collect(kit.peer('alice').collab.refused$, 4);

        const alice = kit.peer('mallory').to('alice').collab;
        const attempts = [
            alice.sync('notes', new Uint8Array([0])),
            alice.push('notes', new Uint8Array([0, 0])),
            alice.collaborators('notes'),
            alice.updates('notes').then(updates => firstValueFrom(updates)),
        ];
        for (const error of await Promise.all(attempts.map(attempt => attempt.catch(e => e)))) {
            expect(error).toBeInstanceOf(AccessDenied);
            expect(error.reason).toBe('not-a-collaborator');
        }
        expect((await refusals).map(r => [r.peerId, r.docId, r.action]).sort()).toEqual([
            ['mallory', 'notes', 'collaborators'], ['mallory', 'notes', 'push'], ['mallory', 'notes', 'sync'], ['mallory', 'notes', 'updates'],
        ]);
        expect(kit.peer('alice').collab.refusedCount).toBe(4);
        expect(notes.toString()).toBe('private plans');
        expect([...notes.collaborators]).toEqual(['bob']);

        // The invited collaborator is served as before.
        const sync = await kit.peer('bob').to('alice').collab.sync('notes', new Uint8Array([0]));
        expect(sync.update.byteLength).toBeGreaterThan(2);
    });

    it('remote calls never create documents in my storage, whatever ids a stranger tries', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'mallory'] });
        const alice = kit.peer('mallory').to('alice').controller<CollabApi>(CollabApi);
        for (let i = 0; i < 50; i++) {
            const error = await alice.push(`spam-${i}`, new Uint8Array([0, 0])).catch(e => e);
            expect(error).toBeInstanceOf(AccessDenied);
        }
        const database = peerInternals(kit.peer('alice')).database;
        expect(await database.query(CollabDocRecord).count()).toBe(0);
        expect(await database.query(CollabUpdate).count()).toBe(0);
        // Nothing was loaded either: opening one now finds it empty and without collaborators.
        const spam = await kit.peer('alice').collab.open('spam-0');
        expect(spam.toString()).toBe('');
        expect(spam.collaborators.size).toBe(0);
    });

    it('the same refusal whether or not the document exists: no probing for document names', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'mallory'] });
        await kit.peer('alice').collab.open('exists');
        const alice = kit.peer('mallory').to('alice').collab;
        const [existing, missing] = await Promise.all([alice.collaborators('exists').catch(e => e), alice.collaborators('missing').catch(e => e)]);
        expect(existing).toBeInstanceOf(AccessDenied);
        expect(missing).toBeInstanceOf(AccessDenied);
        expect(existing.message.replace('exists', 'X')).toBe(missing.message.replace('missing', 'X'));
    });
});
