import { createHash, Hash } from 'crypto';
import { createReadStream } from 'fs';
import type { FileHandle } from 'fs/promises';

/** Bytes of one SHA-256 digest. */
const DIGEST_BYTES = 32;

/**
 * A shared file's SHA-256 and its checkpoints: for each chunk, the SHA-256 of the file from its first byte through
 * the end of that chunk (the last checkpoint is the file's SHA-256). A chunk travels with its checkpoint, so the
 * downloader checks each chunk with the whole-file hash it computes anyway: one SHA-256 pass per side, where a hash of
 * each chunk besides made three. The sharer computes the checkpoints once, when it shares the file.
 */
export interface FileDigests {
    /** Hex SHA-256 of the whole file. */
    sha256: string;
    /** 32 bytes per chunk, in chunk order. */
    checkpoints: Uint8Array;
}

/** Reads `path` once: its SHA-256 and the checkpoint at the end of every `chunkSize` bytes (and at its end). */
export function hashFile(path: string, chunkSize: number): Promise<FileDigests> {
    return new Promise((resolve, reject) => {
        const hash = createHash('sha256');
        const checkpoints: Buffer[] = [];
        let inChunk = 0;
        createReadStream(path, { highWaterMark: chunkSize }).on('data', data => {
            // No encoding was given: every piece is a Buffer.
            const piece = data as Buffer;
            // Pieces are usually whole chunks, but a read may come up short: checkpoints follow chunk bounds, not reads.
            for (let offset = 0; offset < piece.length;) {
                const take = Math.min(chunkSize - inChunk, piece.length - offset);
                hash.update(piece.subarray(offset, offset + take));
                offset += take;
                inChunk += take;
                if (inChunk === chunkSize) {
                    checkpoints.push(hash.copy().digest());
                    inChunk = 0;
                }
            }
        }).on('error', reject).on('end', () => {
            if (inChunk) checkpoints.push(hash.copy().digest());
            // A copy in its own ArrayBuffer: a small Buffer.concat lives in Node's shared pool, and the storage writes
            // a Uint8Array's whole ArrayBuffer.
            resolve({ sha256: hash.digest('hex'), checkpoints: new Uint8Array(Buffer.concat(checkpoints)) });
        });
    });
}

/** The hex checkpoint of chunk `index`; undefined when `checkpoints` has none for it. */
export function checkpointOf(checkpoints: Uint8Array, index: number): string | undefined {
    if ((index + 1) * DIGEST_BYTES > checkpoints.byteLength) return undefined;
    return Buffer.from(checkpoints.buffer, checkpoints.byteOffset + index * DIGEST_BYTES, DIGEST_BYTES).toString('hex');
}

/** Whether `checkpoints` holds one digest per chunk of a file of `chunkCount` chunks. */
export function hasCheckpoints(checkpoints: Uint8Array | undefined, chunkCount: number): checkpoints is Uint8Array {
    return checkpoints?.byteLength === chunkCount * DIGEST_BYTES;
}

/**
 * The downloader's whole-file hash, grown chunk by chunk in order. A chunk is taken only when the hash through it
 * equals the checkpoint it came with; one that fails leaves the hash as it was, for the chunk fetched again.
 */
export class RunningDigest {
    protected hash: Hash = createHash('sha256');

    /**
     * Takes `data` if it is the next chunk as the sharer hashed it. A sharer of an earlier version sends each chunk's
     * own SHA-256 instead of a checkpoint: accepted too (hashed a second time only then); the whole file is still
     * checked at the end.
     */
    accept(data: Uint8Array, checkpoint: string): boolean {
        const through = this.hash.copy().update(data);
        if (through.copy().digest('hex') !== checkpoint && createHash('sha256').update(data).digest('hex') !== checkpoint) return false;
        this.hash = through;
        return true;
    }

    /** Takes `data` unchecked: a prefix already verified, or a chunk checked otherwise. */
    update(data: Uint8Array): void {
        this.hash.update(data);
    }

    /** Feeds the first `length` bytes of `handle` (a resumed download's verified prefix). */
    async updateFromFile(handle: FileHandle, length: number): Promise<void> {
        const buffer = Buffer.allocUnsafe(Math.min(length, 1024 * 1024));
        for (let position = 0; position < length;) {
            const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - position), position);
            if (!bytesRead) throw new Error(`The partial file ended at ${position} of ${length} bytes.`);
            this.hash.update(buffer.subarray(0, bytesRead));
            position += bytesRead;
        }
    }

    /** Hex SHA-256 of everything taken. Ends the hash. */
    digest(): string {
        return this.hash.digest('hex');
    }
}

/** Hex SHA-256 of `data`. */
export function sha256Of(data: Uint8Array): string {
    return createHash('sha256').update(data).digest('hex');
}
