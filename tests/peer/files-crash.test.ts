import { createHash, randomBytes } from 'crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync, closeSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { DownloadProgress, DEFAULT_CHUNK_SIZE, PROGRESS_EVERY_CHUNKS } from '../../peer/services/file-service';
import { startSwitchboard } from '../../testing/test-kit';
import { runProgram } from '../processes';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('file sharing: a crashed download', () => {
    let directory: string;
    beforeEach(() => directory = mkdtempSync(join(tmpdir(), 'switchboard-files-crash-')));
    afterEach(() => rmSync(directory, { recursive: true, force: true }));

    it('resumes from the last recorded verified chunk; bytes written after it are fetched again, not trusted', async () => {
        await using kit = await startSwitchboard({ peers: ['bob'] });
        const content = randomBytes(6 * 1024 * 1024);
        const source = join(directory, 'crash.bin');
        writeFileSync(source, content);
        const shared = await kit.peer('bob').files.share(source);
        const storage = join(directory, 'alice.sqlite');
        const destination = join(directory, 'copy.bin');

        // Killed between two progress records: 5 chunks past the second one.
        const recorded = 2 * PROGRESS_EVERY_CHUNKS;
        const killAfter = recorded + 5;
        const download = runProgram('tests/peer/files-download-process.ts', [kit.url, storage, 'bob', shared.id, destination, String(killAfter)]);
        await download.exit;
        expect({ signal: download.child.signalCode, output: download.output() }).toEqual({ signal: 'SIGKILL', output: '' });
        const part = destination + '.part';
        expect(statSync(part).size).toBe(killAfter * DEFAULT_CHUNK_SIZE);

        // The crash tore a write after the last record: that chunk's bytes on disk are wrong.
        const torn = openSync(part, 'r+');
        writeSync(torn, Buffer.alloc(100, 0xee), 0, 100, (recorded + 2) * DEFAULT_CHUNK_SIZE + 10);
        closeSync(torn);

        const alice = await kit.addPeer({ id: 'alice', storage });
        const events: DownloadProgress[] = [];
        await new Promise<void>((resolve, reject) => alice.files.download('bob', shared.id, destination).subscribe({ next: p => events.push(p), error: reject, complete: resolve }));
        const totalChunks = Math.ceil(content.length / DEFAULT_CHUNK_SIZE);
        expect(events[0]).toMatchObject({ resumedFrom: recorded, chunks: recorded });
        expect(events[events.length - 1]).toMatchObject({ state: 'done', chunks: totalChunks, totalChunks, bytes: content.length, refetched: 0 });
        expect(sha256(readFileSync(destination))).toBe(sha256(content));
    }, 120_000);
});
