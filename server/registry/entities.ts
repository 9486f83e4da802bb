import { AutoIncrement, entity, Index, PrimaryKey, Unique } from '@deepkit/type';

/** One peer ID the broker has seen. Persisted, so the registry survives a restart (everyone offline until back). */
@(entity.name('peer').collection('peers'))
export class PeerRecord {
    capabilities: string[] = [];
    firstSeen: Date = new Date;
    lastSeen: Date = new Date;
    online: boolean = false;
    connectedSince?: Date;
    /** Open mode: SHA-256 of the reclaim secret handed to the ID's last owner. */
    reclaimSecretHash?: string;
    /** The session (token name, or `anonymous`) that last registered the ID. */
    owner: string = '';

    constructor(public id: string & PrimaryKey) {
    }
}

export type AuditKind = 'register' | 'takeover' | 'deregister' | 'denied' | 'call' | 'disconnect' | 'auth-failed' | 'closed';

/** One decision of the broker. Append-only. */
@(entity.name('audit_event').collection('audit_events'))
export class AuditEvent {
    id: number & PrimaryKey & AutoIncrement = 0;
    at: Date & Index = new Date;
    /** The acting peer ID, when the acting connection had one. */
    peerId?: string & Index;
    /** The peer ID a call or denial was aimed at. */
    target?: string;
    controller?: string;
    action?: string;
    /** Why: the stable error code of a denial, or a short note. */
    reason?: string;
    session: string = '';
    connectionId: string = '';
    /** How many decisions this row stands for: routed calls are aggregated per caller, target and action. */
    count: number = 1;
    /** The last of `count` decisions (`at` is the first); unset for a single decision. */
    lastAt?: Date;
    /** The broker that decided: in a cluster each broker keeps its own trail, and a peer's rows may come from several. */
    brokerId: string = '';

    constructor(public kind: AuditKind & Index) {
    }
}

/** A peer token. Only its SHA-256 is stored: tokens are 256 random bits, so a slow password hash buys nothing. */
@(entity.name('peer_token').collection('peer_tokens'))
export class PeerToken {
    id: number & PrimaryKey & AutoIncrement = 0;
    hash: string & Unique = '';
    /** Peer IDs the token may register: exact IDs, `prefix*`, or `*`. */
    peerIds: string[] = [];
    /** If non-empty, the only peers it may send to (same pattern syntax). */
    allowTargets: string[] = [];
    /** Peers it may never send to; wins over allowTargets. */
    denyTargets: string[] = [];
    /** May watch the whole broker (dashboard, audit). */
    admin: boolean = false;
    createdAt: Date = new Date;
    revokedAt?: Date;

    constructor(public name: string & Unique) {
    }
}
