import { ControllerSymbol } from '@deepkit/rpc';
import { entity, MaxLength } from '@deepkit/type';

/**
 * Most capabilities a peer's description or sighting carries. A caller keeps what another peer tells it about itself
 * or others (discovery's cache), so an answer is cut to this many, each to 64 characters, before it is kept.
 */
export const MAX_CAPABILITIES = 100;
export type Capabilities = (string & MaxLength<64>)[] & MaxLength<typeof MAX_CAPABILITIES>;

/** `capabilities` as another peer sent them, cut to what this peer keeps (results are not validated on arrival). */
export function boundedCapabilities(capabilities: unknown): string[] {
    if (!Array.isArray(capabilities)) return [];
    return capabilities.slice(0, MAX_CAPABILITIES).filter(each => typeof each === 'string').map(each => each.slice(0, 64));
}

@entity.name('@switchboard/PeerDescription')
export class PeerDescription {
    constructor(
        public id: string,
        public appVersion: string,
        public capabilities: Capabilities,
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
        public capabilities: Capabilities,
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
