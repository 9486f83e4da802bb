import type { PeerKernel } from './kernel';
import type { PeerClient } from './peer-client';
import type { PeerDatabase } from './storage/peer-database';

/**
 * A peer's parts that are not its public API: the Deepkit client of its broker connection, the kernel serving its
 * controllers, and its storage. For the SDK's own features, the test kit and tests; apps use the Peer's members
 * (features get the kernel and database through their FeatureContext).
 */
export interface PeerInternals {
    /** The client of the current broker connection (the same object across reconnects). */
    readonly client: PeerClient;
    readonly kernel: PeerKernel;
    readonly database: PeerDatabase;
}

const internals = new WeakMap<object, PeerInternals>();

/** Called once by the peer's constructor. */
export function bindPeerInternals(peer: object, parts: PeerInternals): void {
    internals.set(peer, parts);
}

/** The internals of a Peer or PeerCore (see PeerInternals). */
export function peerInternals(peer: object): PeerInternals {
    const parts = internals.get(peer);
    if (!parts) throw new TypeError('peerInternals: not a Peer (pass a Peer or PeerCore instance).');
    return parts;
}
