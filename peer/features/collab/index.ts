import { CollabApi } from '@switchboard/protocol';
import type { PeerFeature } from '../../feature';
import { CollabController } from '../../controllers/collab-controller';
import { CollabService } from '../../services/collab-service';
import { CollabDocRecord, CollabUpdate } from '../../storage/entities';
import { PeerDatabase } from '../../storage/peer-database';

export { CollabService } from '../../services/collab-service';

/**
 * Shared documents (Yjs) as a feature: `open('notes', { collaborators })` gives a live document, kept in storage and
 * synced with each collaborator when either comes back. `Peer` carries it as `peer.collab`.
 */
export function collab(): PeerFeature<CollabService> {
    return {
        entities: [CollabUpdate, CollabDocRecord],
        setup(context) {
            const service = new CollabService(context.database, context.peer);
            return {
                api: service,
                providers: [{ provide: CollabService, useValue: service }],
                controllers: [[CollabController, CollabApi]],
                // After every registration: what changed on either side while apart.
                registered: () => service.resyncAll(),
                close: async () => void await service.idle(),
                knownPeers: limit => collaborators(context.database, limit),
            };
        },
    };
}

async function collaborators(database: PeerDatabase, limit: number): Promise<string[]> {
    return (await database.query(CollabDocRecord).select('collaborators').limit(limit).find()).flatMap(row => row.collaborators);
}
