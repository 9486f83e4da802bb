import { getBSONDeserializer, getBSONSerializer, Writer } from '@deepkit/bson';
import { blockCopyWriteArrayBuffer, quietReflect, stockWriteArrayBuffer } from '../../shared/deepkit/patches';
import { specificSQLiteError } from '../../shared/deepkit/sqlite-patch';
import { UniqueConstraintFailure } from '@deepkit/orm';
import { SQLitePersistence, SQLiteQueryResolver } from '@deepkit/sqlite';
import { runInNewContext } from 'vm';
import { Processor, stringifyType } from '@deepkit/type';

/** Contract of shared/deepkit/patches.ts and sqlite-patch.ts: fails loudly when a Deepkit upgrade moves what they patch. */
describe('reaches into Deepkit internals', () => {
    it('the BSON writer patch is installed and writes exactly what Deepkit writes', () => {
        expect(Writer.prototype.writeArrayBuffer).toBe(blockCopyWriteArrayBuffer);
        const bytes = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);
        for (const value of [bytes, bytes.subarray(10, 500), Buffer.from(bytes), bytes.buffer]) {
            const stock = new Writer(new Uint8Array(2000));
            stockWriteArrayBuffer.call(stock, value);
            const patched = new Writer(new Uint8Array(2000));
            blockCopyWriteArrayBuffer.call(patched, value);
            expect(patched.offset).toBe(stock.offset);
            expect(Buffer.from(patched.buffer)).toEqual(Buffer.from(stock.buffer));
        }
    });

    it('typed serializers go through the patched writer and round-trip binaries', () => {
        interface Chunk { index: number; data: Uint8Array }
        const serialize = getBSONSerializer<Chunk>();
        const deserialize = getBSONDeserializer<Chunk>();
        const data = Uint8Array.from({ length: 100_000 }, (_, i) => i % 256);
        const spy = jest.spyOn(Writer.prototype, 'writeArrayBuffer');
        const decoded = deserialize(serialize({ index: 3, data }));
        expect(spy).toHaveBeenCalled();
        spy.mockRestore();
        expect(decoded.index).toBe(3);
        expect(Buffer.from(decoded.data).equals(Buffer.from(data))).toBe(true);
    });
});

describe('reaches into @deepkit/sqlite', () => {
    it('a failed query with an error from another realm is mapped, not looped on', () => {
        const foreign = runInNewContext('new Error("The database connection is not open")') as Error;
        expect(foreign instanceof Error).toBe(false);
        expect(SQLiteQueryResolver.prototype.handleSpecificError).toBe(specificSQLiteError);
        expect(SQLitePersistence.prototype.handleSpecificError).toBe(specificSQLiteError);
        expect(specificSQLiteError(foreign)).toBe(foreign);
        const unique = runInNewContext('new Error("UNIQUE constraint failed: peers.id")') as Error;
        expect(specificSQLiteError(unique)).toBeInstanceOf(UniqueConstraintFailure);
        const wrapped = new Error('insert failed', { cause: unique });
        expect(specificSQLiteError(wrapped)).toBeInstanceOf(UniqueConstraintFailure);
    });
});

describe('reaches into @deepkit/type', () => {
    it('the type processor is the quiet one and still computes types', () => {
        // Deepkit's own reflect() only adds a console.warn when a computation took over 100 ms.
        expect(Processor.prototype.reflect).toBe(quietReflect);
        class Reflected {
            a: string = '';
            c?: { d: Date };
        }
        expect(stringifyType(Processor.get().reflect(Reflected))).toContain('Reflected');
    });
});
