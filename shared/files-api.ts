import { ControllerSymbol } from '@deepkit/rpc';
import { entity, integer, Maximum, MaxLength, Minimum, Positive } from '@deepkit/type';
import { Observable } from 'rxjs';

@entity.name('@switchboard/FileInfo')
export class FileInfo {
    constructor(
        public id: string,
        public name: string,
        public size: number,
        /** Hex SHA-256 of the whole file. */
        public sha256: string,
        public chunkSize: number,
        public chunkCount: number,
    ) {
    }
}

@entity.name('@switchboard/FileChunk')
export class FileChunk {
    constructor(
        public index: number,
        public data: Uint8Array,
        /**
         * Hex SHA-256 of the file from its first byte through the end of this chunk (its checkpoint; for the last chunk,
         * the file's SHA-256), so a downloader checks each chunk with the one whole-file hash it computes. A sealed
         * chunk's is the SHA-256 of its box. Earlier sharers sent the SHA-256 of `data`; downloaders accept both.
         */
        public sha256: string,
    ) {
    }
}

/**
 * At most this many chunks per `chunks()` request. A downloader keeps two such windows requested (the next one is on
 * its way while the current one is written), so it buffers at most twice this many chunks.
 */
export const MAX_CHUNK_WINDOW = 16;

export interface FilesApi {
    list(): Promise<FileInfo[]>;

    info(fileId: string & MaxLength<64>): Promise<FileInfo>;

    /**
     * Streams `count` chunks from `from` on, in order; a downloader asks for the next window before these arrive.
     * `sealed`: each chunk's `data` is a box sealed for the caller, `sha256` empty (the box authenticates itself), see
     * `peer.sealing`.
     */
    chunks(fileId: string & MaxLength<64>, from: integer & Minimum<0>, count: integer & Positive & Maximum<16>, sealed?: boolean): Observable<FileChunk>;

    /** Local-only: share a file of this peer. */
    share(path: string): Promise<FileInfo>;
}

export const FilesApi = ControllerSymbol<FilesApi>('switchboard/files', [FileInfo, FileChunk]);
export const filesIdempotent = ['list', 'info', 'chunks'] as const;
