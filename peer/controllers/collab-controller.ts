import { rpc } from '@deepkit/rpc';
import { Observable } from 'rxjs';
import { CollabApi, CollabSync, DocId } from '@switchboard/protocol';
import { CallerContext } from '../caller-context';
import { Sealing } from '../sealing';
import { answerSealedSync } from '../sealing/sealed-payloads';
import { CollabService } from '../services/collab-service';

/** Serves this peer's documents to the collaborators its app invited; the caller is the broker-verified one. */
@rpc.controller(CollabApi)
export class CollabController implements CollabApi {
    constructor(protected collab: CollabService, protected caller: CallerContext, protected sealing: Sealing) {
    }

    @rpc.action()
    async sync(docId: DocId, stateVector: Uint8Array): Promise<CollabSync> {
        return this.collab.answerSync(this.caller.requirePeerId(), docId, stateVector);
    }

    @rpc.action()
    async push(docId: DocId, update: Uint8Array): Promise<void> {
        await this.collab.acceptPush(this.caller.requirePeerId(), docId, update);
    }

    @rpc.action()
    async syncSealed(docId: DocId, box: Uint8Array): Promise<Uint8Array> {
        const caller = this.caller.requirePeerId();
        return answerSealedSync(this.sealing, caller, docId, box, stateVector => this.collab.answerSync(caller, docId, stateVector));
    }

    @rpc.action()
    async pushSealed(docId: DocId, box: Uint8Array): Promise<void> {
        const caller = this.caller.requirePeerId();
        await this.collab.acceptPush(caller, docId, await this.sealing.open(caller, 'collab-push', box, docId));
    }

    @rpc.action()
    updates(docId: DocId): Observable<Uint8Array> {
        return this.collab.updatesFor(this.caller.requirePeerId(), docId);
    }

    @rpc.action()
    async collaborators(docId: DocId): Promise<string[]> {
        return this.collab.collaboratorsFor(this.caller.requirePeerId(), docId);
    }
}
