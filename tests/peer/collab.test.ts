import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { CollabDocument } from '../../peer/services/collab-service';
import { startSwitchboard } from '../../testing/test-kit';
import { firstValueFrom, merge } from 'rxjs';
import { filter } from 'rxjs/operators';
import { wentOffline } from '../helpers';

/** A small deterministic generator, so a failing run can be replayed from its seed. */
function random(seed: number): () => number {
    return () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed / 0x7fffffff;
    };
}

function randomEdit(document: CollabDocument, next: () => number, author: string): void {
    const length = document.text.length;
    if (length > 5 && next() < 0.35) {
        const at = Math.floor(next() * (length - 1));
        document.text.delete(at, 1 + Math.floor(next() * Math.min(4, length - at - 1)));
    } else {
        document.text.insert(Math.floor(next() * (length + 1)), `${author}${Math.floor(next() * 100)} `);
    }
}

/** Resolves once `condition` holds, checked after every change of any of `documents`. */
async function whenDocuments(documents: CollabDocument[], condition: () => boolean): Promise<void> {
    if (!condition()) await firstValueFrom(merge(...documents.map(document => document.changes$)).pipe(filter(condition)));
}

describe('collaborative documents (Yjs)', () => {
    it('three peers edit concurrently at random positions, one offline for part of it: all end with the same text', async () => {
        const directory = mkdtempSync(join(tmpdir(), 'switchboard-collab-'));
        try {
            await using kit = await startSwitchboard({ peers: ['alice', 'bob', { id: 'carol', storage: join(directory, 'carol.sqlite') }] });
            const ids = ['alice', 'bob', 'carol'];
            const documents = await Promise.all(ids.map(id => kit.peer(id).collab.open('notes', { collaborators: ids.filter(other => other !== id) })));
            const next = random(42);
            const texts = () => documents.map(d => d.toString());

            // Round 1: everyone online, edits interleaved without waiting for each other.
            for (let i = 0; i < 60; i++) randomEdit(documents[i % 3], next, ids[i % 3]);

            // Round 2: carol goes offline and keeps editing; alice and bob edit too.
            const carolGone = wentOffline(kit.peer('alice'), 'carol');
            await kit.peer('carol').pause();
            await carolGone;
            for (let i = 0; i < 60; i++) randomEdit(documents[i % 3], next, ids[i % 3]);

            // Round 3: carol is back; edits made apart merge.
            await kit.peer('carol').resume();
            for (let i = 0; i < 30; i++) randomEdit(documents[i % 3], next, ids[i % 3]);

            await whenDocuments(documents, () => new Set(texts()).size === 1);
            const [converged] = texts();
            expect(converged.length).toBeGreaterThan(0);
            for (const author of ids) expect(converged).toContain(author);

            // The document survives a restart of carol: she reads it from her own SQLite.
            await kit.peer('carol').close();
            const carol = await kit.addPeer({ id: 'carol', storage: join(directory, 'carol.sqlite') });
            expect((await carol.collab.open('notes')).toString()).toBe(converged);
        } finally {
            rmSync(directory, { recursive: true, force: true });
        }
    });

    it('an invited newcomer joins and catches up by state-vector diff', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'dave'] });
        // Knowing the document id is not enough (tests/peer/collab-access.test.ts): alice invites dave.
        const alice = await kit.peer('alice').collab.open('plan', { collaborators: ['dave'] });
        alice.text.insert(0, 'step one\nstep two\n');
        const dave = await kit.peer('dave').collab.open('plan', { collaborators: ['alice'] });
        expect(dave.toString()).toBe('step one\nstep two\n');
        expect(await kit.peer('dave').to('alice').collab.collaborators('plan')).toEqual(['dave']);

        dave.text.insert(dave.text.length, 'step three\n');
        await whenDocuments([alice], () => alice.toString() === 'step one\nstep two\nstep three\n');
    });
});
