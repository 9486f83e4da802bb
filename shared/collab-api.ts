import { ControllerSymbol } from '@deepkit/rpc';
import { MaxLength, MinLength, Pattern } from '@deepkit/type';
import { Observable } from 'rxjs';

export const DOC_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export type DocId = string & MinLength<1> & MaxLength<64> & Pattern<typeof DOC_ID_PATTERN>;

/** One side of a state-vector exchange: what the other side lacks, and what we have. */
export interface CollabSync {
    /** Yjs update with everything the caller's state vector does not cover. */
    update: Uint8Array;
    /** Our state vector, so the caller can send what we lack. */
    stateVector: Uint8Array;
}

/**
 * Collaborative documents (Yjs) a peer serves to its collaborators: the peers its app named when it opened the
 * document. Every action answers anyone else with AccessDenied (reason `not-a-collaborator`).
 */
export interface CollabApi {
    /** Exchanges state: the caller sends its state vector and gets our missing updates. */
    sync(docId: DocId, stateVector: Uint8Array): Promise<CollabSync>;

    /** A collaborator's update (a Yjs update, applied idempotently). */
    push(docId: DocId, update: Uint8Array): Promise<void>;

    /** `sync`, sealed end to end: the box holds the state vector; the answer, the update and our state vector. */
    syncSealed(docId: DocId, box: Uint8Array): Promise<Uint8Array>;

    /** `push`, sealed end to end: the box holds the Yjs update. */
    pushSealed(docId: DocId, box: Uint8Array): Promise<void>;

    /** Our updates to the document as they happen, for observers (not sealed: an observer may be any collaborator). */
    updates(docId: DocId): Observable<Uint8Array>;

    /** Who this peer edits the document with. */
    collaborators(docId: DocId): Promise<string[]>;
}

export const CollabApi = ControllerSymbol<CollabApi>('switchboard/collab');
export const collabIdempotent = ['sync', 'push', 'syncSealed', 'pushSealed', 'collaborators'] as const;
