import { createHash, randomBytes } from 'crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { rpc } from '@deepkit/rpc';
import { integer, Maximum, MaxLength, Minimum, Positive } from '@deepkit/type';
import { lastValueFrom, Observable } from 'rxjs';
import { map, toArray } from 'rxjs/operators';
import { FileChunk, FilesApi } from '../../shared';
import { FileSharingController } from '../../peer/controllers/files-controller';
import { DEFAULT_CHUNK_SIZE } from '../../peer/services/file-service';
import { startSwitchboard } from '../../testing/test-kit';
import { Resources } from '../helpers';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Serves chunks as sharers did before checkpoints: each with the SHA-256 of its own bytes. */
@rpc.controller(FilesApi)
class EarlierSharerController extends FileSharingController {
    @rpc.action()
    override chunks(fileId: string & MaxLength<64>, from: integer & Minimum<0>, count: integer & Positive & Maximum<16>, sealed?: boolean): Observable<FileChunk> {
        return super.chunks(fileId, from, count, sealed).pipe(map(chunk => new FileChunk(chunk.index, chunk.data, sha256(chunk.data))));
    }
}

/** One SHA-256 pass per side (issue 23): each chunk carries the hash of the file through it, its checkpoint. */
describe('file chunks and their checkpoints', () => {
    const resources = new Resources();
    let directory: string;
    beforeEach(() => {
        directory = mkdtempSync(join(tmpdir(), 'switchboard-checkpoints-'));
        resources.add(directory, d => rmSync(d, { recursive: true, force: true }));
    });
    afterEach(() => resources.closeAll());

    function makeFile(name: string, size: number): { path: string, content: Buffer } {
        const content = randomBytes(size);
        const path = join(directory, name);
        writeFileSync(path, content);
        return { path, content };
    }

    it("each chunk comes with the SHA-256 of the file through its end; the last one's is the file's SHA-256", async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        // Three whole chunks and a short last one.
        const { path, content } = makeFile('data.bin', 3 * DEFAULT_CHUNK_SIZE + 1000);
        const shared = await kit.peer('bob').files.share(path);
        const files = kit.peer('alice').to('bob').controller<FilesApi>(FilesApi.path);
        const stream = await files.chunks(shared.id, 0, 4);
        const chunks = await lastValueFrom(stream.pipe(toArray()));

        expect(chunks.map(chunk => chunk.index)).toEqual([0, 1, 2, 3]);
        chunks.forEach((chunk, index) => {
            const end = Math.min(content.length, (index + 1) * DEFAULT_CHUNK_SIZE);
            expect(Buffer.from(chunk.data).equals(content.subarray(index * DEFAULT_CHUNK_SIZE, end))).toBe(true);
            expect(chunk.sha256).toBe(sha256(content.subarray(0, end)));
        });
        expect(chunks[3].sha256).toBe(shared.sha256);
    });

    it('a window from the middle of the file carries the same checkpoints', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        const { path, content } = makeFile('data.bin', 5 * DEFAULT_CHUNK_SIZE);
        const shared = await kit.peer('bob').files.share(path);
        const files = kit.peer('alice').to('bob').controller<FilesApi>(FilesApi.path);
        const chunks = await lastValueFrom((await files.chunks(shared.id, 3, 2)).pipe(toArray()));
        expect(chunks.map(chunk => [chunk.index, chunk.sha256])).toEqual([
            [3, sha256(content.subarray(0, 4 * DEFAULT_CHUNK_SIZE))],
            [4, sha256(content)],
        ]);
    });

    it('a sharer of an earlier version (each chunk with its own SHA-256) is still downloaded and verified', async () => {
        // Plain chunks: a sealed download checks each box's own hash, as before checkpoints.
        await using kit = await startSwitchboard({ peers: [{ id: 'alice', sealing: false }, { id: 'bob', expose: [[EarlierSharerController, FilesApi]] }] });
        const { path, content } = makeFile('old.bin', 4 * DEFAULT_CHUNK_SIZE + 7);
        const shared = await kit.peer('bob').files.share(path);
        const destination = join(directory, 'copy.bin');
        const result = await kit.peer('alice').files.fetch('bob', shared.id, destination);
        expect(result).toMatchObject({ state: 'done', refetched: 0 });
        expect(readFileSync(destination).equals(content)).toBe(true);
    });
});
