import { PeerDatabase } from '../../peer/storage/peer-database';
import { KnownPeer, OutboxEntry } from '../../peer/storage/entities';
import type { SerialSQLiteAdapter } from '../../peer/storage/serial-sqlite-adapter';

/** A peer's SQLite storage with its one connection's prepares and execs counted. */
async function countedDatabase(): Promise<{ database: PeerDatabase, counts: { prepares: number, execs: number } }> {
    const database = new PeerDatabase(':memory:');
    const pool = (database.adapter as SerialSQLiteAdapter).connectionPool;
    const connection = await pool.getConnection();
    const counts = { prepares: 0, execs: 0 };
    const { db } = connection;
    const prepare = db.prepare.bind(db);
    const exec = db.exec.bind(db);
    db.prepare = ((sql: string) => {
        counts.prepares++;
        return prepare(sql);
    }) as typeof db.prepare;
    db.exec = ((sql: string) => {
        counts.execs++;
        return exec(sql);
    }) as typeof db.exec;
    pool.release(connection);
    return { database, counts };
}

describe('peer storage: statements and migrations', () => {
    it('each SQL text is prepared once, however often it runs (in and outside transactions)', async () => {
        const { database, counts } = await countedDatabase();
        await database.migrate();
        for (let index = 0; index < 50; index++) {
            await database.write(async session => {
                session.add(new KnownPeer(`peer-${index}`));
            });
            expect(await database.query(KnownPeer).filter({ id: `peer-${index}` }).findOne()).toMatchObject({ id: `peer-${index}` });
        }
        const afterFifty = counts.prepares;
        for (let index = 0; index < 50; index++) {
            await database.write(async session => {
                session.add(new KnownPeer(`again-${index}`));
            });
            await database.query(KnownPeer).filter({ id: `again-${index}` }).findOne();
        }
        // The second fifty ran the same texts: nothing new to prepare.
        expect(counts.prepares).toBe(afterFifty);
        expect(await database.query(KnownPeer).count()).toBe(100);
        await database.close();
    });

    it('migrates a fresh database in one step, and a migrated one with nothing to run', async () => {
        const { database, counts } = await countedDatabase();
        await database.migrate();
        // One DDL script; the rest is reading the (empty) schema.
        expect(counts.execs).toBe(1);
        await database.persist(new OutboxEntry('one', 'bob', 'chat', '{}'));
        expect(await database.query(OutboxEntry).count()).toBe(1);

        const execsBefore = counts.execs;
        await database.migrate();
        expect(counts.execs).toBe(execsBefore);
        await database.close();
    });

    it('creates the tables of another fresh database of the same entities without reading its schema again', async () => {
        const first = await countedDatabase();
        await first.database.migrate();
        await first.database.close();
        const { database, counts } = await countedDatabase();
        await database.migrate();
        // One look for any table, then the DDL learnt from the first database: no schema to parse and compare.
        expect(counts.prepares).toBe(1);
        expect(counts.execs).toBe(1);
        await database.persist(new OutboxEntry('one', 'bob', 'chat', '{}'));
        await database.persist(new KnownPeer('carol'));
        expect(await database.query(OutboxEntry).count()).toBe(1);
        expect(await database.query(KnownPeer).count()).toBe(1);
        await database.close();
    });
});
