import { ControllerSymbol } from '@deepkit/rpc';
import { entity, MaxLength } from '@deepkit/type';

@entity.name('@switchboard/PeerDescription')
export class PeerDescription {
    constructor(
        public id: string,
        public appVersion: string,
        public capabilities: string[],
        public uptimeSeconds: number,
    ) {
    }
}

/** What one peer knows about another, and from where it learned it. */
@entity.name('@switchboard/PeerSighting')
export class PeerSighting {
    constructor(
        public id: string,
        public online: boolean,
        public capabilities: string[],
        public lastSeen: Date,
        public learnedFrom: string,
    ) {
    }
}

export interface DiscoveryApi {
    info(): PeerDescription;

    ping(): { at: Date };

    capabilities(): string[];

    /** What this peer knows about `peerId`, if anything. */
    knows(peerId: string & MaxLength<64>): Promise<PeerSighting | undefined>;
}

export const DiscoveryApi = ControllerSymbol<DiscoveryApi>('switchboard/discovery', [PeerDescription, PeerSighting]);
export const discoveryIdempotent = ['info', 'ping', 'capabilities', 'knows'] as const;

/** Which step of discovery answered: the peer itself, a peer we asked, our cache, or the broker's registry. */
export type DiscoveryStep = 'live' | 'peers' | 'cache' | 'broker';
