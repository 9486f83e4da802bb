import { rpc } from '@deepkit/rpc';
import { integer, Maximum, MaxLength, Minimum, Positive } from '@deepkit/type';
import { Observable } from 'rxjs';
import { localOnly, FileChunk, FileInfo, FilesApi } from '@switchboard/protocol';
import { CallerContext } from '../caller-context';
import { Sealing } from '../sealing';
import { sealChunks } from '../sealing/sealed-payloads';
import { FileService } from '../services/file-service';

/** Serves the files this peer shares. Sharing itself is local-only. */
@rpc.controller(FilesApi)
export class FileSharingController implements FilesApi {
    constructor(protected files: FileService, protected caller: CallerContext, protected sealing: Sealing) {
    }

    @rpc.action()
    async list(): Promise<FileInfo[]> {
        return this.files.list();
    }

    @rpc.action()
    async info(fileId: string & MaxLength<64>): Promise<FileInfo> {
        return this.files.info(fileId);
    }

    @rpc.action()
    chunks(fileId: string & MaxLength<64>, from: integer & Minimum<0>, count: integer & Positive & Maximum<16>, sealed?: boolean): Observable<FileChunk> {
        const chunks = this.files.chunks(fileId, from, count);
        return sealed ? sealChunks(chunks, this.sealing, this.caller.requirePeerId(), fileId) : chunks;
    }

    @localOnly()
    async share(path: string): Promise<FileInfo> {
        return this.files.share(path);
    }
}
