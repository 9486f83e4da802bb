import { ControllerSymbol } from '@deepkit/rpc';
import { MaxLength, MinLength, Pattern } from '@deepkit/type';

export const STATE_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** The name of a replicated map: 1 to 64 letters, digits, `.`, `_` or `-`. */
export type StateName = string & MinLength<1> & MaxLength<64> & Pattern<typeof STATE_NAME_PATTERN>;

/** A caller's view of a map: its hash (to see at once that nothing differs) and its Yjs state vector. */
export interface StateDigest {
    /** Hex SHA-256 of the map's Yjs snapshot (state vector and delete set): equal hashes, equal maps. */
    hash: string & MaxLength<64>;
    stateVector: Uint8Array;
}

/**
 * The answer to `sync`: `equal` when the hashes match (nothing else is sent); otherwise the update the caller lacks
 * (everything its state vector does not cover, merged into one Yjs update: the missing writes, however many) and
 * the answering peer's state vector, so the caller can push what the answering peer lacks.
 */
export interface StateSyncAnswer {
    equal: boolean;
    update?: Uint8Array;
    stateVector?: Uint8Array;
    /** The answering peer's hash, so the caller sees whether it lacks anything once the update is applied. */
    hash?: string & MaxLength<64>;
}

/**
 * Replicated maps (peer feature `replicatedState()`) a peer serves to the members its app named when it opened the
 * map. Anyone else gets AccessDenied (reason `not-a-member`), whether or not the map exists.
 */
export interface ReplicatedStateApi {
    /** Compares the caller's digest with ours; answers what the caller lacks. */
    sync(name: StateName, digest: StateDigest): Promise<StateSyncAnswer>;

    /** Writes the receiver lacks (a Yjs update; applying it twice changes nothing). */
    push(name: StateName, update: Uint8Array): Promise<void>;
}

export const ReplicatedStateApi = ControllerSymbol<ReplicatedStateApi>('switchboard/state');
export const replicatedStateIdempotent = ['sync', 'push'] as const;
