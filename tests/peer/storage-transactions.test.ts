import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { PeerDatabase } from '../../peer/storage/peer-database';
import { KnownPeer, PeerSetting } from '../../peer/storage/entities';
import { startSwitchboard } from '../../testing/test-kit';

/**
 * The peer's storage runs transactions next to ordinary queries on one SQLite connection taken in turn
 * (SerialSQLiteAdapter, our one reach into Deepkit's SQL pool). If Deepkit changes underneath it, this fails.
 */
describe('peer storage: transactions among concurrent queries', () => {
    let directory: string;
    beforeEach(() => directory = mkdtempSync(join(tmpdir(), 'switchboard-storage-')));
    afterEach(() => rmSync(directory, { recursive: true, force: true }));

    for (const storage of ['file', ':memory:']) {
        it(`on ${storage}: every transaction commits whole or not at all, and every connection is given back`, async () => {
            const database = new PeerDatabase(storage === 'file' ? join(directory, 'peer.sqlite') : storage);
            await database.migrate();
            const work: Promise<unknown>[] = [];
            for (let i = 0; i < 50; i++) {
                work.push(database.write(async session => {
                    await session.query(PeerSetting).filter({ key: `t${i}` }).has();
                    session.add(new PeerSetting(`t${i}`, 'a'), new KnownPeer(`t${i}`));
                }));
                work.push(database.persist(new PeerSetting(`p${i}`, 'b')));
                work.push(database.query(PeerSetting).find());
                // Fails on its second insert (the key exists): its first insert must not stay.
                if (i % 10 === 0) work.push(database.write(async session => {
                    session.add(new KnownPeer(`orphan${i}`), new PeerSetting(`t${i}`, 'again'));
                }).catch(() => 'rolled back'));
            }
            await Promise.all(work);

            expect(await database.query(PeerSetting).count()).toBe(100);
            expect(await database.query(KnownPeer).count()).toBe(50);
            expect(() => database.disconnect()).not.toThrow();
        });
    }
});

describe('closing a peer while its storage is busy', () => {
    it('waits for the writes and queries in progress instead of failing with "still active connections"', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        const bob = kit.peer('bob');
        // The app sends while bob is closing (as a chat loop does when its user quits): the writes are in progress.
        const closing = bob.close();
        const sends = Array.from({ length: 50 }, (_, i) => bob.chat.send('alice', `m${i}`).catch(error => error));
        await expect(closing).resolves.toBeUndefined();
        await Promise.all(sends);
    });
});
