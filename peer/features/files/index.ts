import { FilesApi } from '@switchboard/protocol';
import type { PeerFeature } from '../../feature';
import { FileSharingController } from '../../controllers/files-controller';
import { FileService } from '../../services/file-service';
import { DownloadRecord, SharedFile } from '../../storage/entities';

export { FileService } from '../../services/file-service';

/**
 * File sharing as a feature: `share(path)`, and verified, resumable downloads from other peers. Node only (it reads
 * and writes files). `Peer` carries it as `peer.files`.
 */
export function files(): PeerFeature<FileService> {
    return {
        entities: [SharedFile, DownloadRecord],
        setup(context) {
            const service = new FileService(context.database, context.peer);
            return {
                api: service,
                providers: [{ provide: FileService, useValue: service }],
                controllers: [[FileSharingController, FilesApi]],
            };
        },
    };
}
