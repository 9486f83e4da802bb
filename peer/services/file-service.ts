import { copyFile, open, rename, rm, stat } from 'fs/promises';
import { basename, resolve } from 'path';
import { Observable, Subscription } from 'rxjs';
import { ChecksumMismatch, MalformedMessage, NotFound, FileChunk, FileInfo, FilesApi, filesIdempotent, MAX_CHUNK_WINDOW } from '@switchboard/protocol';
import { RemotePeer } from '../remote-peer';
import { DownloadRecord, SharedFile } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';
import { checkpointOf, hasCheckpoints, hashFile, RunningDigest } from './file-digests';
import type { Sealing } from '../sealing';
import { SEALED_BOX_OVERHEAD } from '../sealing/sealed-box';
import { chunkContext } from '../sealing/sealed-payloads';

/**
 * 96 KiB: as big as a chunk can be while its message (data, hash, routing; about 98.5 kB) stays under Deepkit's
 * transport chunk size of 100 kB. A bigger reply would be split into Chunk frames that each wait for the broker's
 * ChunkAck, a round trip per 100 kB; a smaller one costs more messages per byte (64 KiB: about 25% slower).
 */
export const DEFAULT_CHUNK_SIZE = 96 * 1024;
/**
 * A download's progress is written to the database every this many verified chunks, and when it stops for any
 * reason it sees; a killed process resumes from the last write and fetches the chunks after it again.
 */
export const PROGRESS_EVERY_CHUNKS = 16;
/** Windows requested ahead: the next one is on its way while the current one is written. */
const WINDOWS_IN_FLIGHT = 2;
/** A peer announcing bigger chunks than this is not trusted with our memory. */
const MAX_CHUNK_SIZE = 4 * 1024 * 1024;
/** Fetches of one chunk before a checksum mismatch (or a window without it) is final. */
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
    /** Asks for chunks sealed end to end when the sharer has a key (absent: plaintext only). */
    readonly sealing?: Sealing;
}

/**
 * Sharing files with other peers and fetching theirs. A download writes to `<destination>.part`, verifies every
 * chunk and then the whole file, and only then renames it into place; an interrupted one resumes from the last
 * verified chunk. A second download of the same content is copied from the first.
 */
export class FileService {
    /** @internal Built by the peer, never by an app. */
    constructor(protected database: PeerDatabase, protected host: FileHost, protected chunkSize = DEFAULT_CHUNK_SIZE) {
    }

    /** Shares a file of this peer. The id is derived from its content, so it is stable across restarts. */
    async share(path: string): Promise<FileInfo> {
        const absolute = resolve(path);
        const size = (await stat(absolute).catch(() => { throw new NotFound(`No file at ${absolute}.`, 'file'); })).size;
        const { sha256, checkpoints } = await hashFile(absolute, this.chunkSize);
        const shared = new SharedFile(sha256.slice(0, 32), absolute, basename(absolute), size, sha256, this.chunkSize);
        shared.checkpoints = checkpoints;
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
                const checkpoints = await this.checkpoints(file, info.chunkCount);
                const handle = await open(file.path, 'r');
                try {
                    const end = Math.min(from + Math.min(count, MAX_CHUNK_WINDOW), info.chunkCount);
                    for (let index = from; index < end && !stopped; index++) {
                        const length = Math.min(file.chunkSize, file.size - index * file.chunkSize);
                        // Not zero-filled: every byte is overwritten, or the read comes up short and nothing is sent.
                        const data = Buffer.allocUnsafe(length);
                        const { bytesRead } = await handle.read(data, 0, length, index * file.chunkSize);
                        if (bytesRead !== length) throw new NotFound(`${file.name} changed on disk since it was shared; share it again.`, 'file');
                        subscriber.next(new FileChunk(index, data, checkpointOf(checkpoints, index)!));
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
        // Chunks come sealed for this peer when the sharer has a key (SealedKeyChanged if it is not the pinned one).
        const sealed = await this.host.sealing?.sealsTo(peerId) ?? false;
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
        // Bytes past the recorded progress were written but never recorded as verified (a killed process): not trusted.
        record.verifiedChunks = Math.min(record.verifiedChunks, Math.floor(partSize / info.chunkSize));
        progress.resumedFrom = progress.chunks = record.verifiedChunks;
        progress.bytes = record.verifiedChunks * info.chunkSize;
        report({ ...progress });

        const verified = record;
        let persisted = verified.verifiedChunks;
        const persist = async () => {
            verified.updatedAt = new Date;
            await this.database.persist(verified);
            persisted = verified.verifiedChunks;
        };
        const wholeFile = new RunningDigest();
        let windows: ChunkWindow[] = [];
        const closeWindows = () => {
            for (const window of windows) window.close();
            windows = [];
        };
        signal.addEventListener('abort', closeWindows, { once: true });
        const handle = await open(part, partSize ? 'r+' : 'w');
        try {
            await handle.truncate(verified.verifiedChunks * info.chunkSize);
            // Chunks are written in order, so the whole-file hash grows with them; only a resumed prefix is read back.
            await wholeFile.updateFromFile(handle, verified.verifiedChunks * info.chunkSize);
            const attempts = new Map<number, number>();
            let requested = verified.verifiedChunks;
            const failedAttempt = (index: number, error: () => Error) => {
                const tries = (attempts.get(index) ?? 0) + 1;
                attempts.set(index, tries);
                if (tries >= CHUNK_ATTEMPTS) throw error();
                // Whatever is on its way was asked for after the failed chunk: ask again from it.
                closeWindows();
                requested = verified.verifiedChunks;
            };
            while (verified.verifiedChunks < info.chunkCount && !signal.aborted) {
                while (windows.length < WINDOWS_IN_FLIGHT && requested < info.chunkCount) {
                    const count = Math.min(MAX_CHUNK_WINDOW, info.chunkCount - requested);
                    windows.push(new ChunkWindow(count, info.chunkSize + (sealed ? SEALED_BOX_OVERHEAD : 0), sealed ? remote.chunks(fileId, requested, count, true) : remote.chunks(fileId, requested, count)));
                    requested += count;
                }
                const window = windows[0];
                const chunk = await window.next();
                if (signal.aborted) break;
                const index = verified.verifiedChunks;
                if (!chunk) {
                    windows.shift();
                    if (window.delivered < window.count) {
                        failedAttempt(index, () => new MalformedMessage(`Peer "${peerId}" stopped sending ${info.name} at chunk ${index}, ${CHUNK_ATTEMPTS} times; the file may have changed there: ask for it to be shared again.`));
                    }
                    continue;
                }
                const expectedLength = Math.min(info.chunkSize, info.size - index * info.chunkSize);
                const refetch = () => {
                    progress.refetched++;
                    failedAttempt(index, () => new ChecksumMismatch(`Chunk ${index} of ${info.name} from "${peerId}" failed verification ${CHUNK_ATTEMPTS} times; nothing was written for it.`));
                };
                if (chunk.index !== index || chunk.data.byteLength !== expectedLength + (sealed ? SEALED_BOX_OVERHEAD : 0)) {
                    refetch();
                    continue;
                }
                // Sealed for us (its tag covers every byte, so it has no hash of its own): a box that does not open is
                // fetched again, like a chunk that fails its checksum (sealing.rejected$ reports each).
                const data = sealed ? await this.host.sealing!.openChunk(peerId, chunk.data, chunkContext(fileId, index)) : chunk.data;
                if (!data) {
                    refetch();
                    continue;
                }
                // A plain chunk comes with its checkpoint (file-digests.ts): checked by the whole-file hash, one pass.
                if (sealed) wholeFile.update(data);
                else if (!wholeFile.accept(data, chunk.sha256)) {
                    refetch();
                    continue;
                }
                await handle.write(data, 0, data.byteLength, index * info.chunkSize);
                verified.verifiedChunks++;
                if (verified.verifiedChunks - persisted >= PROGRESS_EVERY_CHUNKS) await persist();
                progress.chunks = verified.verifiedChunks;
                progress.bytes = Math.min(info.size, verified.verifiedChunks * info.chunkSize);
                progress.bytesPerSecond = Math.round(progress.bytes / Math.max(0.001, (Date.now() - started) / 1000));
                report({ ...progress });
            }
        } finally {
            signal.removeEventListener('abort', closeWindows);
            closeWindows();
            await handle.close();
            // Stopped by an error or the caller: what was verified is kept exactly. If the database is gone (the peer
            // closes), the last periodic write stands and the next attempt fetches a few chunks again.
            if (verified.verifiedChunks !== persisted) await persist().catch(() => undefined);
        }
        if (signal.aborted) return;

        if (wholeFile.digest() !== info.sha256) {
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

    /** The file's checkpoints; computed once (and kept) for a file shared before they were recorded. */
    protected async checkpoints(file: SharedFile, chunkCount: number): Promise<Uint8Array> {
        if (hasCheckpoints(file.checkpoints, chunkCount)) return file.checkpoints;
        const { sha256, checkpoints } = await hashFile(file.path, file.chunkSize);
        if (sha256 !== file.sha256) throw new NotFound(`${file.name} changed on disk since it was shared; share it again.`, 'file');
        file.checkpoints = checkpoints;
        await this.database.persist(file);
        return checkpoints;
    }
}

/**
 * One requested window of chunks, read in order: what arrives is buffered until taken, so the next window can arrive
 * while this one is written. At most `count` chunks of at most `chunkSize` bytes: a peer sending more, or bigger, is
 * not listened to any more (the window ends short and is asked for again).
 */
class ChunkWindow {
    /** Chunks taken so far. */
    delivered = 0;
    protected buffered: FileChunk[] = [];
    protected received = 0;
    protected ended = false;
    protected error?: unknown;
    protected wake?: () => void;
    protected subscription?: Subscription;
    /** Deepkit holds a remote Observable only weakly (ended when garbage-collected): kept until the window closes. */
    protected stream?: Observable<FileChunk>;

    constructor(readonly count: number, protected chunkSize: number, request: Promise<Observable<FileChunk>>) {
        request.then(stream => {
            if (this.ended) return;
            this.stream = stream;
            this.subscription = stream.subscribe({
                next: chunk => {
                    if (this.ended) return;
                    if (++this.received > this.count || !(chunk?.data instanceof Uint8Array) || chunk.data.byteLength > this.chunkSize) return this.end();
                    this.buffered.push(chunk);
                    this.notify();
                },
                error: error => this.end(error),
                complete: () => this.end(),
            });
            if (this.ended) this.subscription.unsubscribe();
        }, error => this.end(error));
    }

    /** The next chunk; undefined when the window ended without more. Rejects with the peer's error. */
    async next(): Promise<FileChunk | undefined> {
        while (true) {
            const chunk = this.buffered.shift();
            if (chunk) {
                this.delivered++;
                return chunk;
            }
            if (this.error !== undefined) throw this.error;
            if (this.ended) return undefined;
            await new Promise<void>(resolve => this.wake = resolve);
        }
    }

    /** Stops listening; chunks already buffered are dropped. */
    close(): void {
        this.buffered = [];
        this.end();
    }

    protected end(error?: unknown): void {
        if (!this.ended) {
            this.ended = true;
            this.error = error;
            this.subscription?.unsubscribe();
            this.stream = undefined;
        }
        this.notify();
    }

    protected notify(): void {
        const wake = this.wake;
        this.wake = undefined;
        wake?.();
    }
}

function toInfo(file: SharedFile): FileInfo {
    return new FileInfo(file.id, file.name, file.size, file.sha256, file.chunkSize, Math.ceil(file.size / file.chunkSize));
}
