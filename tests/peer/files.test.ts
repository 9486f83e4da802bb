import { createHash, randomBytes } from 'crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { createRpcMessageSourceDest, rpc, RpcTypes, serializeBinaryRpcMessage, TransportOptions } from '@deepkit/rpc';
import { integer, Maximum, MaxLength, Minimum, Positive, typeOf } from '@deepkit/type';
import { EMPTY, Observable } from 'rxjs';
import { map } from 'rxjs/operators';
import { AccessDenied, ChecksumMismatch, FileChunk, FileInfo, FilesApi, MalformedMessage, NotFound } from '../../shared';
import { FileSharingController } from '../../peer/controllers/files-controller';
import { DEFAULT_CHUNK_SIZE, DownloadProgress } from '../../peer/services/file-service';
import { startSwitchboard } from '../../testing/test-kit';
import { collect, Resources } from '../helpers';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Serves chunk 3 corrupted, once: a flaky network or disk. */
@rpc.controller(FilesApi)
class CorruptOnceController extends FileSharingController {
    static corrupted = 0;

    @rpc.action()
    override chunks(fileId: string & MaxLength<64>, from: integer & Minimum<0>, count: integer & Positive & Maximum<16>, sealed?: boolean): Observable<FileChunk> {
        return super.chunks(fileId, from, count, sealed).pipe(map(chunk => {
            if (chunk.index !== 3 || CorruptOnceController.corrupted) return chunk;
            CorruptOnceController.corrupted++;
            const data = Buffer.from(chunk.data);
            data[0] ^= 0xff;
            return new FileChunk(chunk.index, data, chunk.sha256);
        }));
    }
}

/** Counts chunk requests. */
@rpc.controller(FilesApi)
class CountingController extends FileSharingController {
    static requests = 0;

    @rpc.action()
    override chunks(fileId: string & MaxLength<64>, from: integer & Minimum<0>, count: integer & Positive & Maximum<16>, sealed?: boolean): Observable<FileChunk> {
        CountingController.requests++;
        return super.chunks(fileId, from, count, sealed);
    }
}

/** Describes the file truthfully, then never sends a chunk: every window ends empty. */
@rpc.controller(FilesApi)
class SilentController extends FileSharingController {
    static requests = 0;

    @rpc.action()
    override chunks(fileId: string & MaxLength<64>, from: integer & Minimum<0>, count: integer & Positive & Maximum<16>, sealed?: boolean): Observable<FileChunk> {
        SilentController.requests++;
        return EMPTY;
    }
}

/** Announces a whole-file hash that is not the file's. */
@rpc.controller(FilesApi)
class LyingController extends FileSharingController {
    @rpc.action()
    override async info(fileId: string & MaxLength<64>): Promise<FileInfo> {
        const info = await super.info(fileId);
        return new FileInfo(info.id, info.name, info.size, '0'.repeat(64), info.chunkSize, info.chunkCount);
    }
}

describe('file sharing', () => {
    const resources = new Resources();
    let directory: string;
    beforeEach(() => {
        directory = mkdtempSync(join(tmpdir(), 'switchboard-files-'));
        resources.add(directory, d => rmSync(d, { recursive: true, force: true }));
    });
    afterEach(() => resources.closeAll());

    function makeFile(name: string, size: number): { path: string, content: Buffer } {
        const content = randomBytes(size);
        const path = join(directory, name);
        writeFileSync(path, content);
        return { path, content };
    }

    it("a full chunk is one message under Deepkit's transport chunk size: no ChunkAck round trip per 100 kB", () => {
        // The reply a serving peer writes for each chunk (an observable's next value, routed back to the caller).
        const chunk = new FileChunk(1_000_000, Buffer.alloc(DEFAULT_CHUNK_SIZE), 'f'.repeat(64));
        const reply = createRpcMessageSourceDest(2 ** 31, RpcTypes.ResponseActionObservableNext, Buffer.alloc(16), Buffer.alloc(16),
            { id: 2 ** 31, v: chunk }, typeOf<{ id: number, v: FileChunk }>());
        expect(serializeBinaryRpcMessage(reply).byteLength).toBeLessThan(new TransportOptions().chunkSize);
    });

    it('lists and describes shared files; sharing is local-only', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        const { path, content } = makeFile('notes.txt', 200_000);
        const shared = await kit.peer('bob').files.share(path);
        expect(shared).toMatchObject({ name: 'notes.txt', size: 200_000, sha256: sha256(content), chunkSize: DEFAULT_CHUNK_SIZE, chunkCount: Math.ceil(200_000 / DEFAULT_CHUNK_SIZE) });

        const bob = kit.peer('alice').to('bob').files;
        expect((await bob.list()).map(f => f.id)).toEqual([shared.id]);
        expect(await bob.info(shared.id)).toMatchObject({ sha256: sha256(content) });
        await expect(bob.info('nope')).rejects.toBeInstanceOf(NotFound);
        await expect(bob.share('/etc/passwd')).rejects.toBeInstanceOf(AccessDenied);
    });

    it('5 MB: interrupted mid-way when the serving peer goes away, resumed from the last verified chunk, verified', async () => {
        await using kit = await startSwitchboard({ peers: ['alice'] });
        const { path, content } = makeFile('big.bin', 5 * 1024 * 1024);
        const bobStorage = join(directory, 'bob.sqlite');
        const bob = await kit.addPeer({ id: 'bob', storage: bobStorage });
        const shared = await bob.files.share(path);
        const alice = kit.peer('alice');
        const destination = join(directory, 'copy.bin');

        // First attempt: bob leaves after 20 verified chunks.
        let left: Promise<void> | undefined;
        const first = await new Promise<unknown>(resolve => alice.files.download('bob', shared.id, destination).subscribe({
            next: progress => {
                if (progress.chunks >= 20 && !left) left = bob.close();
            },
            error: resolve,
            complete: () => resolve('completed?!'),
        }));
        await left;
        expect(first).toBeInstanceOf(Error);
        expect(existsSync(destination)).toBe(false);
        expect(existsSync(destination + '.part')).toBe(true);

        // bob is back (same storage: the share is still there); alice resumes.
        const aliceSeesBob = collect(alice.presence$, 1, e => e.peerId === 'bob' && e.kind === 'online');
        await kit.addPeer({ id: 'bob', storage: bobStorage });
        await aliceSeesBob;
        const events: DownloadProgress[] = [];
        await new Promise<void>((resolve, reject) => alice.files.download('bob', shared.id, destination).subscribe({ next: p => events.push(p), error: reject, complete: resolve }));
        expect(events[0].resumedFrom).toBeGreaterThanOrEqual(20);
        const totalChunks = Math.ceil(content.length / DEFAULT_CHUNK_SIZE);
        expect(events[events.length - 1]).toMatchObject({ state: 'done', chunks: totalChunks, totalChunks, bytes: content.length });
        expect(sha256(readFileSync(destination))).toBe(sha256(content));
        expect(existsSync(destination + '.part')).toBe(false);
    });

    it('a corrupt chunk is detected and fetched again', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', { id: 'bob', expose: [[CorruptOnceController, FilesApi]] }] });
        CorruptOnceController.corrupted = 0;
        const { path, content } = makeFile('data.bin', 600_000);
        const shared = await kit.peer('bob').files.share(path);
        const result = await kit.peer('alice').files.fetch('bob', shared.id, join(directory, 'out.bin'));
        expect(CorruptOnceController.corrupted).toBe(1);
        expect(result).toMatchObject({ state: 'done', refetched: 1 });
        expect(sha256(readFileSync(join(directory, 'out.bin')))).toBe(sha256(content));
    });

    it('a second request for the same file is served from the local cache, without fetching chunks', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', { id: 'bob', expose: [[CountingController, FilesApi]] }] });
        CountingController.requests = 0;
        const { path, content } = makeFile('song.bin', 300_000);
        const shared = await kit.peer('bob').files.share(path);
        const alice = kit.peer('alice');
        await alice.files.fetch('bob', shared.id, join(directory, 'first.bin'));
        const requests = CountingController.requests;
        expect(requests).toBeGreaterThan(0);

        // The file's description comes from bob; the bytes do not.
        const again = await alice.files.fetch('bob', shared.id, join(directory, 'second.bin'));
        expect(again).toMatchObject({ state: 'done', fromCache: true });
        expect(CountingController.requests).toBe(requests);
        expect(readFileSync(join(directory, 'second.bin')).equals(content)).toBe(true);
    });

    it('a peer that stops sending chunks: MalformedMessage after a few requests, not an endless loop', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', { id: 'bob', expose: [[SilentController, FilesApi]] }] });
        SilentController.requests = 0;
        const { path } = makeFile('mute.bin', 300_000);
        const shared = await kit.peer('bob').files.share(path);
        await expect(kit.peer('alice').files.fetch('bob', shared.id, join(directory, 'mute.bin.copy'))).rejects.toBeInstanceOf(MalformedMessage);
        expect(SilentController.requests).toBeLessThanOrEqual(6);
    });

    it('a file that does not match its announced hash: ChecksumMismatch, nothing left behind', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', { id: 'bob', expose: [[LyingController, FilesApi]] }] });
        const { path } = makeFile('liar.bin', 100_000);
        const shared = await kit.peer('bob').files.share(path);
        const destination = join(directory, 'never.bin');
        await expect(kit.peer('alice').files.fetch('bob', shared.id, destination)).rejects.toBeInstanceOf(ChecksumMismatch);
        expect(existsSync(destination)).toBe(false);
        expect(existsSync(destination + '.part')).toBe(false);
    });
});
