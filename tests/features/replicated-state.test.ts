import { MaxLength } from '@deepkit/type';
import { ValidationError } from '@deepkit/type';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import * as Y from 'yjs';
import { Peer } from '../../peer';
import { replicatedState, ReplicatedMap } from '../../peer/features/state';
import { AccessDenied, MalformedMessage, QuotaExceeded } from '../../shared/errors';
import { ReplicatedStateApi } from '../../shared/state-api';
import { eventually, Resources, wentOffline } from '../helpers';

interface Note {
    text: string & MaxLength<200>;
    at: Date;
}

const note = (text: string): Note => ({ text, at: new Date('2026-01-01T00:00:00Z') });

async function sameEverywhere(...maps: ReplicatedMap<any>[]): Promise<void> {
    await eventually(async () => new Set(await Promise.all(maps.map(map => map.hash()))).size === 1);
}

describe('replicated state', () => {
    const resources = new Resources();
    let directory: string;
    beforeEach(() => directory = mkdtempSync(join(tmpdir(), 'state-')));
    afterEach(async () => {
        await resources.closeAll();
        rmSync(directory, { recursive: true, force: true });
    });

    async function peer(url: string, id: string, storage?: string) {
        return resources.add(await Peer.connect({ url, id, storage, features: { state: replicatedState() } }), p => p.close());
    }

    // Pausing alice tests the member that asks first on its return; pausing bob, the one that is asked.
    it.each(['alice', 'bob'])('merges concurrent writes made while %s was paused: the same map and hash on both', async paused => {
        const { url } = await resources.broker();
        const alice = await peer(url, 'alice');
        const bob = await peer(url, 'bob');
        const atAlice = await alice.features.state.open<Note>('room', { members: ['bob'] });
        const atBob = await bob.features.state.open<Note>('room', { members: ['alice'] });
        atAlice.set('topic', note('before'));
        await eventually(() => atBob.get('topic')?.text === 'before');

        const away = paused === 'alice' ? alice : bob;
        await away.pause();
        atAlice.set('topic', note('from alice')).set('only-alice', note('a'));
        atBob.set('topic', note('from bob')).set('only-bob', note('b'));
        atBob.delete('topic');
        atBob.set('topic', note('bob again'));
        await away.resume();

        await sameEverywhere(atAlice, atBob);
        expect(atAlice.entries()).toEqual(atBob.entries());
        expect(atAlice.keys()).toEqual(['only-alice', 'only-bob', 'topic']);
        // The same winner on both sides, whichever it is; values keep their type (a Date stays a Date).
        expect(['from alice', 'bob again']).toContain(atAlice.get('topic')!.text);
        expect(atBob.get('only-alice')!.at).toBeInstanceOf(Date);
    });

    it('converges among three members writing the same key while one of them is away', async () => {
        const { url } = await resources.broker();
        const peers = [await peer(url, 'alice'), await peer(url, 'bob'), await peer(url, 'carol')];
        const maps = await Promise.all(peers.map(p => p.features.state.open<Note>('room', { members: ['alice', 'bob', 'carol'] })));
        const carol = peers[2];
        await carol.pause();
        maps.forEach((map, i) => map.set('topic', note(`from ${peers[i].id}`)).set(`only-${peers[i].id}`, note('x')));
        await carol.resume();

        await sameEverywhere(...maps);
        expect(maps[0].keys()).toEqual(['only-alice', 'only-bob', 'only-carol', 'topic']);
        expect(new Set(maps.map(map => map.get('topic')!.text)).size).toBe(1);
    });

    it('brings a member 5,000 updates behind up to date with one merged update', async () => {
        const { url } = await resources.broker();
        const alice = await peer(url, 'alice');
        const bob = await peer(url, 'bob');
        const atAlice = await alice.features.state.open<number>('counters', { members: ['bob'] });
        const atBob = await bob.features.state.open<number>('counters', { members: ['alice'] });

        const offline = wentOffline(alice, 'bob');
        await bob.pause();
        await offline;
        let separateBytes = 0;
        atAlice.doc.on('update', (update: Uint8Array) => separateBytes += update.byteLength);
        for (let i = 0; i < 5_000; i++) atAlice.set(`key-${i % 100}`, i);
        const before = { alice: { ...alice.features.state.traffic }, bob: { ...bob.features.state.traffic } };

        await bob.resume();
        await sameEverywhere(atAlice, atBob);
        expect(atBob.get('key-99')).toBe(4_999);
        const sent = (who: 'alice' | 'bob', peerOf: typeof alice) => {
            const now = peerOf.features.state.traffic;
            return now.syncsSent - before[who].syncsSent + now.pushesSent - before[who].pushesSent;
        };
        // One sync (digests compared) and one push with everything bob lacks: not 5,000 messages.
        expect(sent('alice', alice) + sent('bob', bob)).toBeLessThanOrEqual(2);
        // What bob received is alice's state (values plus tombstones), not the 5,000 updates one by one.
        const received = bob.features.state.traffic.bytesReceived - before.bob.bytesReceived;
        expect(received).toBeLessThanOrEqual(Y.encodeStateAsUpdate(atAlice.doc).byteLength);
        expect(received).toBeLessThan(separateBytes / 2);
    });

    it('keeps the map across a restart of the peer', async () => {
        const { url } = await resources.broker();
        const storage = join(directory, 'alice.sqlite');
        const alice = await peer(url, 'alice', storage);
        const bob = await peer(url, 'bob');
        const atBob = await bob.features.state.open<Note>('room', { members: ['alice'] });
        const atAlice = await alice.features.state.open<Note>('room', { members: ['bob'] });
        atAlice.set('kept', note('stored'));
        await sameEverywhere(atAlice, atBob);
        await alice.close();

        // Alone (bob closed too), so what the restarted alice has comes from her storage.
        await bob.close();
        const again = await peer(url, 'alice', storage);
        const reopened = await again.features.state.open<Note>('room', { members: ['bob'] });
        expect(reopened.get('kept')).toEqual(note('stored'));
        expect(await reopened.hash()).toBe(await atBob.hash());
    });

    it('refuses strangers, invalid values, hostile updates and maps that grow past their limit', async () => {
        const { url } = await resources.broker();
        const alice = await peer(url, 'alice');
        const bob = await peer(url, 'bob');
        const carol = await peer(url, 'carol');
        const atAlice = await alice.features.state.open<Note>('room', { members: ['bob'], maxBytes: 2_000 });
        atAlice.set('topic', note('members only'));

        const digest = { hash: '', stateVector: Y.encodeStateVector(new Y.Doc()) };
        const asCarol = carol.to('alice').controller<ReplicatedStateApi>(ReplicatedStateApi);
        await expect(asCarol.sync('room', digest)).rejects.toMatchObject({ code: 'ACCESS_DENIED', reason: 'not-a-member' });
        await expect(asCarol.sync('no-such-map', digest)).rejects.toBeInstanceOf(AccessDenied);

        // A member sending a value of another type, or another Yjs shape, changes nothing.
        const asBob = bob.to('alice').controller<ReplicatedStateApi>(ReplicatedStateApi);
        const forged = new Y.Doc();
        forged.getMap('entries').set('topic', { text: 42 });
        await expect(asBob.push('room', Y.encodeStateAsUpdate(forged))).rejects.toBeInstanceOf(ValidationError);
        const text = new Y.Doc();
        text.getText('entries-text').insert(0, 'x');
        await expect(asBob.push('room', Y.encodeStateAsUpdate(text))).rejects.toBeInstanceOf(MalformedMessage);
        expect(atAlice.get('topic')!.text).toBe('members only');

        expect(() => atAlice.set('bad', { text: 'x'.repeat(201), at: new Date })).toThrow(ValidationError);
        for (let i = 0; i < 20; i++) {
            try {
                atAlice.set(`k${i}`, note('y'.repeat(150)));
            } catch (error) {
                expect(error).toBeInstanceOf(QuotaExceeded);
                expect(atAlice.byteSize).toBeLessThanOrEqual(2_000);
                return;
            }
        }
        throw new Error('the map grew past maxBytes');
    });
});
