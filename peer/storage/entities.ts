import { AutoIncrement, entity, Index, PrimaryKey } from '@deepkit/type';

/** Small things a peer must remember across restarts, such as its reclaim secret. */
@(entity.name('setting').collection('settings'))
export class PeerSetting {
    constructor(public key: string & PrimaryKey, public value: string) {
    }
}

/** What this peer last learned about another peer (discovery cache). */
@(entity.name('known_peer').collection('known_peers'))
export class KnownPeer {
    capabilities: string[] = [];
    online: boolean = false;
    lastSeen: Date = new Date;
    appVersion?: string;
    /** Which source told us: `broker`, `presence`, or the ID of the peer we asked. */
    learnedFrom: string = '';

    constructor(public id: string & PrimaryKey) {
    }
}

export type OutboxState = 'queued' | 'delivered' | 'failed';

/**
 * A message waiting for its recipient to come online. Written before the first attempt, in the same transaction as
 * the record it delivers (a chat message, a held payload), so neither a crash nor a restart loses it.
 */
@(entity.name('outbox').collection('outbox').index(['recipient', 'state', 'sequence']))
export class OutboxEntry {
    createdAt: Date = new Date;
    /**
     * The order of queueing, over all recipients; entries for one recipient go out by it. Not `createdAt`: several
     * entries are queued within one millisecond.
     */
    sequence: number = 0;
    attempts: number = 0;
    state: OutboxState & Index = 'queued';
    lastError?: string;

    constructor(
        /** The message id: delivery is idempotent on the receiver, which deduplicates by it. */
        public id: string & PrimaryKey,
        public recipient: string & Index,
        /** What to deliver, e.g. `chat`. */
        public kind: string,
        public payload: string,
    ) {
    }
}

/** A chat message as this peer keeps it (either direction). */
@(entity.name('chat_record').collection('chat_records'))
export class ChatRecord {
    status: 'sending' | 'queued' | 'delivered' | 'read' | 'failed' = 'sending';
    groupId?: string;
    /** How it travelled (see MessagePath); unset for records written before paths were recorded. */
    path?: 'direct' | 'broker' | 'relay' | 'outbox';

    constructor(
        /** `in:` or `out:` + peer + message id: the same group message goes to several peers under one id. */
        public key: string & PrimaryKey,
        public id: string & Index,
        public peerId: string & Index,
        public direction: 'in' | 'out',
        public text: string,
        public sentAt: Date,
    ) {
    }
}

@(entity.name('chat_group').collection('chat_groups'))
export class ChatGroupRecord {
    constructor(
        public id: string & PrimaryKey,
        public name: string,
        public members: string[],
        public owner: string,
    ) {
    }
}

/** A payload this peer holds as a relay for an offline recipient. */
@(entity.name('relay_held').collection('relay_held'))
export class HeldPayload {
    state: 'held' | 'delivered' | 'expired' = 'held';
    deliveredAt?: Date;

    constructor(
        /** original sender + payload id: payload ids are chosen by senders. */
        public key: string & PrimaryKey,
        public payloadId: string,
        public originalSender: string & Index,
        public recipient: string & Index,
        public kind: string,
        public body: string,
        public storedAt: Date,
        public expiresAt: Date,
    ) {
    }
}

/**
 * Payloads this peer received through a relay (or directly): its inbox, kept so the app can read what arrived
 * before it subscribed, and so each payload reaches the app once.
 */
@(entity.name('relay_received').collection('relay_received'))
export class ReceivedPayload {
    receivedAt: Date & Index = new Date;

    constructor(
        /** original sender + payload id */
        public key: string & PrimaryKey,
        public payloadId: string,
        public originalSender: string,
        public via: string,
        public kind: string,
        public body: string,
        public storedAt: Date,
    ) {
    }
}

/** A delivery receipt this peer took (recipient + payload id), so `relay.receipts$` reports each payload once. */
@(entity.name('relay_receipt').collection('relay_receipts'))
export class ReceiptRecord {
    receivedAt: Date = new Date;

    constructor(public key: string & PrimaryKey) {
    }
}

/** A file this peer shares (its app chose to; sharing is local-only). The id is derived from the content. */
@(entity.name('shared_file').collection('shared_files'))
export class SharedFile {
    sharedAt: Date = new Date;
    /** 32 bytes per chunk: the SHA-256 of the file through each chunk's end (services/file-digests.ts); unset for files shared before. */
    checkpoints?: Uint8Array;

    constructor(
        public id: string & PrimaryKey,
        public path: string,
        public name: string,
        public size: number,
        public sha256: string,
        public chunkSize: number,
    ) {
    }
}

/** A download in progress or done: how far it is verified, so an interrupted one resumes. */
@(entity.name('download').collection('downloads'))
export class DownloadRecord {
    verifiedChunks: number = 0;
    completed: boolean = false;
    updatedAt: Date = new Date;

    constructor(
        /** The destination path: one download per destination. */
        public destination: string & PrimaryKey,
        public peerId: string,
        public fileId: string,
        public sha256: string & Index,
        public size: number,
        public chunkSize: number,
        public chunkCount: number,
    ) {
    }
}

/** One Yjs update of a collaborative document; loading applies them in order (compacted now and then). */
@(entity.name('collab_update').collection('collab_updates'))
export class CollabUpdate {
    id: number & PrimaryKey & AutoIncrement = 0;
    at: Date = new Date;

    constructor(public docId: string & Index, public data: Uint8Array) {
    }
}

/** The collaborators of a document, so a restarted peer knows whom to sync with. */
@(entity.name('collab_doc').collection('collab_docs'))
export class CollabDocRecord {
    constructor(public docId: string & PrimaryKey, public collaborators: string[]) {
    }
}
