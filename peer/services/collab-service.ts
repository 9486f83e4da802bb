import { defer, from, Observable, Subject } from 'rxjs';
import { filter, map, switchMap } from 'rxjs/operators';
import * as Y from 'yjs';
import { PresenceEvent, CollabApi, CollabSync, DOC_ID_PATTERN, AccessDenied, InvalidPeerId } from '@switchboard/protocol';
import { RemotePeer } from '../remote-peer';
import { CollabDocRecord, CollabUpdate } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';
import type { Sealing } from '../sealing';
import { pushUpdate, syncState } from '../sealing/sealed-payloads';

/** Stored updates beyond this are merged into one when the document is next opened. */
const COMPACT_AFTER = 200;
/** Origin of updates loaded from SQLite: neither stored again nor sent. */
const LOADED = Symbol('loaded');

export interface CollabHost {
    readonly id: string;
    readonly presence$: Observable<PresenceEvent>;
    to(peerId: string): RemotePeer;
    /** Seals updates for collaborators with a key (absent: plaintext only). */
    readonly sealing?: Sealing;
}

/** Applied on behalf of a collaborator: stored, not sent back. */
class RemoteOrigin {
    constructor(readonly peerId: string) {
    }
}

/**
 * A live collaborative document: a Yjs `Y.Doc` kept in sync with the document's collaborators through peer calls,
 * and stored in this peer's SQLite. Edit `text` (or any Yjs type of `doc`) as usual.
 */
export class CollabDocument {
    readonly text: Y.Text;
    /** Updates from collaborators, as they are applied. */
    readonly remoteUpdates$ = new Subject<{ from: string, update: Uint8Array }>();
    /** Every change (local or remote), after it is applied. */
    readonly changes$ = new Subject<void>();

    constructor(readonly id: string, readonly doc: Y.Doc, readonly collaborators: Set<string>) {
        this.text = doc.getText('content');
    }

    toString(): string {
        return this.text.toString();
    }
}

/** A remote call on a document that this peer's app never shared with the caller. */
export interface CollabRefusal {
    /** The caller, as the broker verified it. */
    peerId: string;
    docId: string;
    action: 'sync' | 'push' | 'updates' | 'collaborators';
    at: Date;
}

/**
 * Collaborative editing on Yjs. Local edits go to every collaborator at once; whenever a collaborator comes online
 * (or this peer re-registers) the two exchange state-vector diffs, so edits made while apart merge on return.
 * Yjs makes every order of applying updates converge to the same text.
 *
 * Access: this peer's app owns its copy of each document, and only the collaborators it named in `open()` may sync,
 * push, follow or list it. Remote calls never create a document or add a collaborator; anyone else gets AccessDenied
 * (the same answer whether or not the document exists), and the app sees the refusal on `refused$`, where it can
 * offer to accept by opening the document with the caller as collaborator.
 */
export class CollabService {
    /** Remote calls refused because the caller is not a collaborator of the document. */
    readonly refused$ = new Subject<CollabRefusal>();
    /** How many remote calls were refused since start. */
    refusedCount = 0;
    protected documents = new Map<string, Promise<CollabDocument>>();
    /** Documents the app opened (as opposed to loaded to answer a collaborator). */
    protected opened = new Set<string>();
    protected localUpdates = new Subject<{ docId: string, update: Uint8Array }>();
    protected writes: Promise<unknown> = Promise.resolve();

    /** @internal Built by the peer, never by an app. */
    constructor(protected database: PeerDatabase, protected host: CollabHost) {
        host.presence$.subscribe(event => {
            if (event.kind === 'online' && event.sequence > 0) void this.syncWithPeer(event.peerId);
        });
    }

    /** Opens (or returns the open) document; `collaborators` are added to those it already has. */
    async open(docId: string, options: { collaborators?: string[] } = {}): Promise<CollabDocument> {
        const document = await this.get(docId);
        const added = (options.collaborators ?? []).filter(peer => peer !== this.host.id && !document.collaborators.has(peer));
        for (const peer of added) document.collaborators.add(peer);
        if (added.length) await this.saveCollaborators(document);
        // The first open catches up with everyone; later ones only with collaborators new to the document.
        const firstOpen = !this.opened.has(docId);
        this.opened.add(docId);
        await Promise.all((firstOpen ? [...document.collaborators] : added).map(peer => this.syncDocument(document, peer)));
        return document;
    }

    /** The document, loaded from SQLite once; no syncing. */
    protected get(docId: string): Promise<CollabDocument> {
        if (!DOC_ID_PATTERN.test(docId)) throw new InvalidPeerId(`Invalid document id ${JSON.stringify(docId)}: 1 to 64 letters, digits, ".", "_" or "-".`, docId);
        let loading = this.documents.get(docId);
        if (!loading) this.documents.set(docId, loading = this.load(docId));
        return loading;
    }

    /** Exchanges state with every collaborator of every open document (after this peer (re)connects). */
    async resyncAll(): Promise<void> {
        const documents = await Promise.all(this.documents.values());
        await Promise.all(documents.flatMap(document => [...document.collaborators].map(peer => this.syncDocument(document, peer))));
    }

    /** Resolves when every update so far is in SQLite. */
    idle(): Promise<unknown> {
        return this.writes;
    }

    // ---- served to collaborators (the caller is verified by the broker) ----------------------------------------

    async answerSync(caller: string, docId: string, stateVector: Uint8Array): Promise<CollabSync> {
        const document = await this.authorize(caller, docId, 'sync');
        return { update: Y.encodeStateAsUpdate(document.doc, stateVector), stateVector: Y.encodeStateVector(document.doc) };
    }

    async acceptPush(caller: string, docId: string, update: Uint8Array): Promise<void> {
        const document = await this.authorize(caller, docId, 'push');
        Y.applyUpdate(document.doc, update, new RemoteOrigin(caller));
    }

    /** Our updates to the document, for a collaborator; a stranger's subscription fails with AccessDenied. */
    updatesFor(caller: string, docId: string): Observable<Uint8Array> {
        return defer(() => from(this.authorize(caller, docId, 'updates'))).pipe(
            switchMap(() => this.localUpdates.pipe(filter(u => u.docId === docId), map(u => u.update))),
        );
    }

    async collaboratorsFor(caller: string, docId: string): Promise<string[]> {
        return [...(await this.authorize(caller, docId, 'collaborators')).collaborators];
    }

    // ---- internals ----------------------------------------------------------------------------------------------

    /**
     * The document, if the app shared it with `caller`; else AccessDenied. Checked before anything is loaded, so a
     * stranger cannot make this peer create, load or keep a document.
     */
    protected async authorize(caller: string, docId: string, action: CollabRefusal['action']): Promise<CollabDocument> {
        const loading = this.documents.get(docId);
        const shared = loading
            ? (await loading).collaborators.has(caller)
            : !!(await this.database.query(CollabDocRecord).filter({ docId }).findOneOrUndefined())?.collaborators.includes(caller);
        if (shared) return this.get(docId);
        this.refusedCount++;
        this.refused$.next({ peerId: caller, docId, action, at: new Date });
        const error = new AccessDenied(`Document "${docId}" is not shared with "${caller}" on this peer. Ask its owner to open it with { collaborators: ["${caller}"] }.`, 'not-a-collaborator');
        error.stack = '';
        throw error;
    }

    protected async load(docId: string): Promise<CollabDocument> {
        const doc = new Y.Doc();
        const stored = await this.database.query(CollabUpdate).filter({ docId }).orderBy('id').find();
        Y.transact(doc, () => {
            for (const update of stored) Y.applyUpdate(doc, update.data, LOADED);
        }, LOADED);
        if (stored.length > COMPACT_AFTER) {
            await this.database.query(CollabUpdate).filter({ docId }).deleteMany();
            await this.database.persist(new CollabUpdate(docId, Y.encodeStateAsUpdate(doc)));
        }
        const record = await this.database.query(CollabDocRecord).filter({ docId }).findOneOrUndefined();
        const document = new CollabDocument(docId, doc, new Set(record?.collaborators ?? []));

        doc.on('update', (update: Uint8Array, origin: unknown) => {
            if (origin === LOADED) return;
            this.writes = this.writes.then(() => this.database.persist(new CollabUpdate(docId, update))).catch(() => undefined);
            document.changes$.next();
            if (origin instanceof RemoteOrigin) {
                document.remoteUpdates$.next({ from: origin.peerId, update });
                return;
            }
            this.localUpdates.next({ docId, update });
            for (const peer of document.collaborators) void pushUpdate(this.remote(peer), this.host.sealing, peer, docId, update).catch(() => undefined);
        });
        return document;
    }

    protected async saveCollaborators(document: CollabDocument): Promise<void> {
        const record = await this.database.query(CollabDocRecord).filter({ docId: document.id }).findOneOrUndefined() ?? new CollabDocRecord(document.id, []);
        record.collaborators = [...document.collaborators];
        await this.database.persist(record);
    }

    protected async syncWithPeer(peerId: string): Promise<void> {
        const documents = await Promise.all(this.documents.values());
        await Promise.all(documents.filter(d => d.collaborators.has(peerId)).map(d => this.syncDocument(d, peerId)));
    }

    /** Both directions: take what the peer has that we lack, then give what it lacks. Offline peers are skipped. */
    protected async syncDocument(document: CollabDocument, peerId: string): Promise<void> {
        try {
            const remote = this.remote(peerId);
            const answer = await syncState(remote, this.host.sealing, peerId, document.id, Y.encodeStateVector(document.doc));
            Y.applyUpdate(document.doc, answer.update, new RemoteOrigin(peerId));
            const missing = Y.encodeStateAsUpdate(document.doc, answer.stateVector);
            if (hasContent(missing)) await pushUpdate(remote, this.host.sealing, peerId, document.id, missing);
        } catch {
            // Not reachable now: the next presence "online" or our next registration syncs again.
        }
    }

    protected remote(peerId: string) {
        return this.host.to(peerId).controller<CollabApi>(CollabApi);
    }
}

/** An empty Yjs update is two zero bytes (no structs, empty delete set). */
function hasContent(update: Uint8Array): boolean {
    return update.byteLength > 2;
}
