import { entity } from '@deepkit/type';

/** What the broker's registry knows about one peer. */
@entity.name('@switchboard/PeerInfo')
export class PeerInfo {
    constructor(
        public id: string,
        public online: boolean,
        public capabilities: string[] = [],
        public firstSeen: Date = new Date,
        public lastSeen: Date = new Date,
        /** When the current connection registered; unset while offline. */
        public connectedSince?: Date,
    ) {
    }

    /** The broker holding the peer's connection (it differs between peers in a cluster); unset while offline. */
    brokerId?: string;

    /**
     * Offline after its connection was lost (not a clean deregister): the ID is held for its owner until then, and
     * anyone else registering it gets PeerIdTaken (the broker's peerIdGraceMs). Unset otherwise.
     */
    heldUntil?: Date;
}
