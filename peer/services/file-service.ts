import { createHash } from 'crypto';
import { createReadStream } from 'fs';
import { copyFile, open, rename, rm, stat } from 'fs/promises';
import { basename, resolve } from 'path';
import { Observable } from 'rxjs';
import { ChecksumMismatch, MalformedMessage, NotFound } from '../../shared/errors';
import { FileChunk, FileInfo, FilesApi, filesIdempotent, MAX_CHUNK_WINDOW } from '../../shared/files-api';
import { RemotePeer } from '../remote-peer';
import { DownloadRecord, SharedFile } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';

export const DEFAULT_CHUNK_SIZE = 64 * 1024;
/** A peer announcing bigger chunks than this is not trusted with our memory. */
const MAX_CHUNK_SIZE = 4 * 1024 * 1024;
/** Fetches of one chunk before a checksum mismatch is final. */
const CHUNK_ATTEMPTS = 3;

export interface DownloadProgress {
    fileId: string;
    name: string;
    state: 'transferring' | 'done';
    bytes: number;
    totalBytes: number;
    chunks: number;
    totalChunks: number;
    /** The chunk the transfer started from: > 0 when an interrupted download resumed. */
    resumedFrom: number;
    /** Chunks fetched again after a checksum mismatch. */
    refetched: number;
    /** Served from a completed download of the same content, without asking the peer for chunks. */
    fromCache: boolean;
    bytesPerSecond: number;
}

export interface FileHost {
    to(peerId: string): RemotePeer;
}

/**
 * Sharing files with other peers and fetching theirs. A download writes to `<destination>.part`, verifies every
 * chunk and then the whole file, and only then renames it into place; an interrupted one resumes from the last
 * verified chunk. A second download of the same content is copied from the first.
 */
export class FileService {
    constructor(protected database: PeerDatabase, protected host: FileHost, protected chunkSize = DEFAULT_CHUNK_SIZE) {
    }

    /** Shares a file of this peer. The id is derived from its content, so it is stable across restarts. */
    async share(path: string): Promise<FileInfo> {
        const absolute = resolve(path);
        const size = (await stat(absolute).catch(() => { throw new NotFound(`No file at ${absolute}.`, 'file'); })).size;
        const sha256 = await hashFile(absolute);
        const shared = new SharedFile(sha256.slice(0, 32), absolute, basename(absolute), size, sha256, this.chunkSize);
        const existing = await this.database.query(SharedFile).filter({ id: shared.id }).findOneOrUndefined();
        if (existing) await this.database.remove(existing);
        await this.database.persist(shared);
        return toInfo(shared);
    }

    async list(): Promise<FileInfo[]> {
        return (await this.database.query(SharedFile).orderBy('name').find()).map(toInfo);
    }

    async info(fileId: string): Promise<FileInfo> {
        return toInfo(await this.shared(fileId));
    }

    /** `count` chunks from `from` on, each with its SHA-256; stops reading when the caller unsubscribes. */
    chunks(fileId: string, from: number, count: number): Observable<FileChunk> {
        return new Observable<FileChunk>(subscriber => {
            let stopped = false;
            (async () => {
                const file = await this.shared(fileId);
                const info = toInfo(file);
                const handle = await open(file.path, 'r');
                try {
                    const end = Math.min(from + Math.min(count, MAX_CHUNK_WINDOW), info.chunkCount);
                    for (let index = from; index < end && !stopped; index++) {
                        const length = Math.min(file.chunkSize, file.size - index * file.chunkSize);
                        const data = Buffer.alloc(length);
                        await handle.read(data, 0, length, index * file.chunkSize);
                        subscriber.next(new FileChunk(index, data, sha256Of(data)));
                    }
                } finally {
                    await handle.close();
                }
                subscriber.complete();
            })().catch(error => subscriber.error(error));
            return () => stopped = true;
        });
    }

    /**
     * Fetches `fileId` from `peerId` into `destination`. Progress is an Observable; unsubscribing stops the
     * transfer and keeps what was verified, for the next attempt to resume.
     */
    download(peerId: string, fileId: string, destination: string): Observable<DownloadProgress> {
        return new Observable<DownloadProgress>(subscriber => {
            const abort = new AbortController();
            this.transfer(peerId, fileId, resolve(destination), progress => subscriber.next(progress), abort.signal)
                .then(() => subscriber.complete(), error => subscriber.error(error));
            return () => abort.abort();
        });
    }

    /** `download()` as a promise of the final progress. */
    fetch(peerId: string, fileId: string, destination: string): Promise<DownloadProgress> {
        return new Promise((resolve, reject) => {
            let last: DownloadProgress | undefined;
            this.download(peerId, fileId, destination).subscribe({ next: p => last = p, error: reject, complete: () => resolve(last!) });
        });
    }

    protected async transfer(peerId: string, fileId: string, destination: string, report: (progress: DownloadProgress) => void, signal: AbortSignal): Promise<void> {
        const remote = this.host.to(peerId).controller<FilesApi>(FilesApi, { idempotent: filesIdempotent });
        const info = await remote.info(fileId);
        if (info.chunkSize < 1 || info.chunkSize > MAX_CHUNK_SIZE || info.chunkCount !== Math.ceil(info.size / info.chunkSize)) {
            throw new MalformedMessage(`Peer "${peerId}" describes file ${fileId} inconsistently (size ${info.size}, chunk size ${info.chunkSize}, ${info.chunkCount} chunks).`);
        }
        const started = Date.now();
        const progress: DownloadProgress = {
            fileId, name: info.name, state: 'transferring', bytes: 0, totalBytes: info.size, chunks: 0, totalChunks: info.chunkCount,
            resumedFrom: 0, refetched: 0, fromCache: false, bytesPerSecond: 0,
        };

        if (await this.copyFromCache(info, destination)) {
            report({ ...progress, state: 'done', bytes: info.size, chunks: info.chunkCount, fromCache: true });
            return;
        }

        const part = destination + '.part';
        let record = await this.database.query(DownloadRecord).filter({ destination }).findOneOrUndefined();
        if (!record || record.sha256 !== info.sha256 || record.completed) {
            if (record) await this.database.remove(record);
            record = new DownloadRecord(destination, peerId, fileId, info.sha256, info.size, info.chunkSize, info.chunkCount);
            await this.database.persist(record);
        }
        const partSize = (await stat(part).catch(() => undefined))?.size ?? 0;
        record.verifiedChunks = Math.min(record.verifiedChunks, Math.floor(partSize / info.chunkSize));
        progress.resumedFrom = progress.chunks = record.verifiedChunks;
        progress.bytes = record.verifiedChunks * info.chunkSize;
        report({ ...progress });

        const handle = await open(part, partSize ? 'r+' : 'w');
        try {
            await handle.truncate(record.verifiedChunks * info.chunkSize);
            const attempts = new Map<number, number>();
            while (record.verifiedChunks < info.chunkCount && !signal.aborted) {
                const from = record.verifiedChunks;
                const window = Math.min(MAX_CHUNK_WINDOW, info.chunkCount - from);
                const chunks = await remote.chunks(fileId, from, window);
                await consume(chunks, signal, async chunk => {
                    const index = record!.verifiedChunks;
                    const expectedLength = Math.min(info.chunkSize, info.size - index * info.chunkSize);
                    if (chunk.index !== index || chunk.data.byteLength !== expectedLength || sha256Of(chunk.data) !== chunk.sha256) {
                        const tries = (attempts.get(index) ?? 0) + 1;
                        attempts.set(index, tries);
                        if (tries >= CHUNK_ATTEMPTS) throw new ChecksumMismatch(`Chunk ${index} of ${info.name} from "${peerId}" failed verification ${tries} times; nothing was written for it.`);
                        progress.refetched++;
                        return false;
                    }
                    await handle.write(chunk.data, 0, chunk.data.byteLength, index * info.chunkSize);
                    record!.verifiedChunks++;
                    record!.updatedAt = new Date;
                    await this.database.persist(record!);
                    progress.chunks = record!.verifiedChunks;
                    progress.bytes = Math.min(info.size, record!.verifiedChunks * info.chunkSize);
                    progress.bytesPerSecond = Math.round(progress.bytes / Math.max(0.001, (Date.now() - started) / 1000));
                    report({ ...progress });
                    return true;
                });
            }
        } finally {
            await handle.close();
        }
        if (signal.aborted) return;

        if (await hashFile(part) !== info.sha256) {
            await rm(part, { force: true });
            await this.database.remove(record);
            throw new ChecksumMismatch(`${info.name} from "${peerId}" does not match its announced SHA-256; the partial file was removed.`);
        }
        await rename(part, destination);
        record.completed = true;
        await this.database.persist(record);
        report({ ...progress, state: 'done' });
    }

    protected async copyFromCache(info: FileInfo, destination: string): Promise<boolean> {
        const done = await this.database.query(DownloadRecord).filter({ sha256: info.sha256, completed: true }).find();
        for (const previous of done) {
            const size = (await stat(previous.destination).catch(() => undefined))?.size;
            if (size !== info.size) continue;
            if (previous.destination !== destination) {
                await copyFile(previous.destination, destination + '.part');
                await rename(destination + '.part', destination);
            }
            return true;
        }
        return false;
    }

    protected async shared(fileId: string): Promise<SharedFile> {
        const file = await this.database.query(SharedFile).filter({ id: fileId }).findOneOrUndefined();
        if (!file) throw new NotFound(`No shared file ${fileId} here; list() shows what is shared.`, 'file');
        return file;
    }
}

/** Feeds chunks to `handle` one at a time; stops the stream early when `handle` returns false (a bad chunk). */
function consume(chunks: Observable<FileChunk>, signal: AbortSignal, handle: (chunk: FileChunk) => Promise<boolean>): Promise<void> {
    return new Promise((resolvePromise, reject) => {
        let chain = Promise.resolve(true);
        let settled = false;
        const finish = (error?: unknown) => {
            if (settled) return;
            settled = true;
            subscription.unsubscribe();
            signal.removeEventListener('abort', onAbort);
            error ? reject(error) : resolvePromise();
        };
        const onAbort = () => finish();
        const subscription = chunks.subscribe({
            next: chunk => {
                chain = chain.then(ok => ok && !signal.aborted ? handle(chunk) : false).then(ok => {
                    if (!ok) finish();
                    return ok;
                }, error => {
                    finish(error);
                    return false;
                });
            },
            error: error => chain.then(() => finish(error)),
            complete: () => chain.then(() => finish()),
        });
        // Deepkit holds a remote Observable only weakly (ended when garbage-collected): keep it until we are done.
        subscription.add(() => void chunks);
        signal.addEventListener('abort', onAbort, { once: true });
    });
}

function sha256Of(data: Uint8Array): string {
    return createHash('sha256').update(data).digest('hex');
}

function hashFile(path: string): Promise<string> {
    return new Promise((resolvePromise, reject) => {
        const hash = createHash('sha256');
        createReadStream(path).on('data', chunk => hash.update(chunk)).on('error', reject).on('end', () => resolvePromise(hash.digest('hex')));
    });
}

function toInfo(file: SharedFile): FileInfo {
    return new FileInfo(file.id, file.name, file.size, file.sha256, file.chunkSize, Math.ceil(file.size / file.chunkSize));
}
