import { ReceiveType, resolveReceiveType, ValidationError } from '@deepkit/type';
import * as Y from 'yjs';
import { ReplicatedStateApi, STATE_NAME_PATTERN, StateDigest, StateSyncAnswer, AccessDenied, InvalidPeerId, MalformedMessage, PayloadTooLarge } from '@switchboard/protocol';
import { FeatureContext } from '../../feature';
import { nextTurn } from '@switchboard/protocol/internal';
import { MapStore, MERGE_AT_MOST } from './map-store';
import { defaultStateLimits, LOADED, RemoteOrigin, ReplicatedMap, ROOT, StateLimits } from './replicated-map';
import { checkUpdate } from './update-check';

export interface OpenStateOptions extends Partial<StateLimits> {
    /** The other peers that hold this map; only they may read or write this peer's copy. */
    members: string[];
}

/** What this peer's replicated maps sent and received, for measurements (and tests that count messages). */
export interface StateTraffic {
    /** `sync` calls this peer made, and how many of them found the maps already equal. */
    syncsSent: number;
    syncsEqual: number;
    syncsAnswered: number;
    pushesSent: number;
    pushesReceived: number;
    /** Bytes of Yjs updates received (sync answers and pushes). */
    bytesReceived: number;
    bytesSent: number;
}

/** Longest state vector accepted from a member: about 4,000 writers. */
const MAX_STATE_VECTOR_BYTES = 64 * 1024;

/**
 * `peer.features.state`: maps replicated among their members (see ReplicatedMap). Members compare state by hash and
 * exchange exactly what the other lacks (a Yjs state-vector diff, one message however far behind):
 * - when a map is opened (with every member),
 * - after this peer registers and when a member comes online (the member whose ID sorts first asks, so one
 *   exchange happens, not two crossing each other),
 * - when a pushed write cannot be applied because earlier ones are missing.
 * Local writes go to online members at once, merged per turn of the event loop.
 */
export class ReplicatedState {
    readonly traffic: StateTraffic = { syncsSent: 0, syncsEqual: 0, syncsAnswered: 0, pushesSent: 0, pushesReceived: 0, bytesReceived: 0, bytesSent: 0 };
    protected maps = new Map<string, Promise<ReplicatedMap<any>>>();
    protected stores = new Map<string, MapStore>();
    protected offline = new Set<string>();
    protected outgoing = new Map<string, Uint8Array[]>();

    constructor(protected context: FeatureContext, protected defaults: StateLimits = defaultStateLimits) {
    }

    /**
     * Opens the map `name` (loaded from storage, then synced with every member that is online). `T` is the type of
     * the values: `open<RoomSettings>(…)`. Opening an open map adds members and returns the same map.
     */
    async open<T>(name: string, options: OpenStateOptions, type?: ReceiveType<T>): Promise<ReplicatedMap<T>> {
        if (!STATE_NAME_PATTERN.test(name)) throw new InvalidPeerId(`Invalid map name ${JSON.stringify(name)}: 1 to 64 letters, digits, ".", "_" or "-".`, name);
        const members = options.members.filter(member => member !== this.context.peer.id);
        let loading = this.maps.get(name);
        if (!loading) {
            const resolved = resolveReceiveType(type);
            this.maps.set(name, loading = this.load<T>(name, resolved, { ...this.defaults, ...definedOnly(options) }));
        }
        const map = await loading as ReplicatedMap<T>;
        for (const member of members) (map.members as Set<string>).add(member);
        await Promise.all(members.map(member => this.syncQuietly(map, member)));
        return map;
    }

    /** Resolves when every write so far is in storage. */
    async idle(): Promise<void> {
        await Promise.all([...this.stores.values()].map(store => store.idle()));
    }

    // ---- lifecycle (wired by the feature) -------------------------------------------------------------------------

    started(): void {
        this.context.peer.presence$.subscribe(event => {
            if (event.kind === 'offline') this.offline.add(event.peerId);
            if (event.kind === 'online') this.offline.delete(event.peerId);
        });
    }

    /** After (re-)registering: catch up with the members this peer asks first (see the class comment). */
    async registered(): Promise<void> {
        const maps = await Promise.all(this.maps.values());
        await Promise.all(maps.flatMap(map => [...map.members].filter(member => this.asksFirst(member)).map(member => this.syncQuietly(map, member))));
    }

    async peerOnline(peerId: string): Promise<void> {
        if (!this.asksFirst(peerId)) return;
        const maps = await Promise.all(this.maps.values());
        await Promise.all(maps.filter(map => map.members.has(peerId)).map(map => this.syncQuietly(map, peerId)));
    }

    async close(): Promise<void> {
        await this.idle();
        for (const loading of this.maps.values()) (await loading).close();
    }

    // ---- served to members (the caller is verified by the broker) ------------------------------------------------

    async answerSync(caller: string, name: string, digest: StateDigest): Promise<StateSyncAnswer> {
        const map = await this.authorize(caller, name);
        this.traffic.syncsAnswered++;
        checkStateVector(digest.stateVector);
        const hash = await map.hash();
        if (digest.hash === hash) return { equal: true };
        // Encoded right after hashing, with no await between: the three describe the same state.
        const update = Y.encodeStateAsUpdate(map.doc, digest.stateVector);
        this.traffic.bytesSent += update.byteLength;
        return { equal: false, update, stateVector: Y.encodeStateVector(map.doc), hash };
    }

    async acceptPush(caller: string, name: string, update: Uint8Array): Promise<void> {
        const map = await this.authorize(caller, name);
        this.traffic.pushesReceived++;
        this.apply(map, caller, update);
        // Writes it builds on are missing (we were away, or a push was lost): fetch them.
        if (map.doc.store.pendingStructs || map.doc.store.pendingDs) this.context.inBackground(this.syncQuietly(map, caller));
    }

    // ---- internals ------------------------------------------------------------------------------------------------

    /** The map, if its members include `caller`; else AccessDenied, the same whether or not the map exists. */
    protected async authorize(caller: string, name: string): Promise<ReplicatedMap<any>> {
        const map = await this.maps.get(name);
        if (map?.members.has(caller)) return map;
        const error = new AccessDenied(`Map "${name}" is not shared with "${caller}" on this peer. Its members are the peers named in open(…, { members }).`, 'not-a-member');
        error.stack = '';
        throw error;
    }

    protected async load<T>(name: string, type: ReturnType<typeof resolveReceiveType>, limits: StateLimits): Promise<ReplicatedMap<T>> {
        const map = new ReplicatedMap<T>(name, new Set(), type, limits);
        const store = new MapStore(this.context.database, name);
        this.stores.set(name, store);
        await store.load(map.doc, LOADED);
        map.measureHistory();
        map.doc.on('update', (update: Uint8Array, origin: unknown) => {
            if (origin === LOADED) return;
            store.append(update, map.doc);
            if (!(origin instanceof RemoteOrigin)) this.queuePush(map, update);
        });
        return map;
    }

    /** Local writes of one turn of the event loop go out as one push to each online member. */
    protected queuePush(map: ReplicatedMap<any>, update: Uint8Array): void {
        const queued = this.outgoing.get(map.name);
        if (queued) return void queued.push(update);
        this.outgoing.set(map.name, [update]);
        nextTurn(() => {
            const updates = this.outgoing.get(map.name) ?? [];
            this.outgoing.delete(map.name);
            if (this.context.peer.state !== 'registered') return; // sent by the sync after registering
            const online = [...map.members].filter(member => !this.offline.has(member));
            // Many writes at once: a sync per member (one encode of the state) is cheaper than merging them.
            if (updates.length > MERGE_AT_MOST) return online.forEach(member => this.context.inBackground(this.syncQuietly(map, member)));
            const merged = updates.length === 1 ? updates[0] : Y.mergeUpdates(updates);
            for (const member of online) {
                this.traffic.pushesSent++;
                this.traffic.bytesSent += merged.byteLength;
                // A member that misses it (offline, a lost connection) gets it at the next sync.
                this.context.inBackground(this.remote(member).push(map.name, merged).catch(() => undefined));
            }
        });
    }

    protected apply(map: ReplicatedMap<any>, from: string, update: Uint8Array): void {
        checkUpdate(update, {
            root: ROOT, maxKeyLength: map.limits.maxKeyLength, maxUpdateBytes: 2 * map.limits.maxBytes + MAX_STATE_VECTOR_BYTES,
            checkValue: stored => map.checkStored(stored),
        });
        this.traffic.bytesReceived += update.byteLength;
        Y.applyUpdate(map.doc, update, new RemoteOrigin(from));
    }

    /** One exchange: send our digest, apply what we lack, push what the member lacks. */
    protected async sync(map: ReplicatedMap<any>, member: string): Promise<void> {
        if (this.context.peer.state !== 'registered') return;
        const remote = this.remote(member);
        this.traffic.syncsSent++;
        const answer = await remote.sync(map.name, { hash: await map.hash(), stateVector: Y.encodeStateVector(map.doc) });
        if (answer.equal) return void this.traffic.syncsEqual++;
        if (answer.update) this.apply(map, member, answer.update);
        if (!answer.stateVector) return;
        checkStateVector(answer.stateVector);
        // What we just applied may have made us equal to the member: then it lacks nothing.
        if (answer.hash === await map.hash()) return;
        const missing = Y.encodeStateAsUpdate(map.doc, answer.stateVector);
        this.traffic.pushesSent++;
        this.traffic.bytesSent += missing.byteLength;
        await remote.push(map.name, missing);
    }

    /**
     * A member that is offline, or refuses because its app has not opened the map yet, is tried again at the next
     * trigger (registration, presence, its own open). What a member sent that this peer refused (a value of another
     * type, another Yjs shape) goes to `peer.errors$`.
     */
    protected async syncQuietly(map: ReplicatedMap<any>, member: string): Promise<void> {
        try {
            await this.sync(map, member);
        } catch (error) {
            if (error instanceof MalformedMessage || error instanceof ValidationError || error instanceof PayloadTooLarge) this.context.peer.errors$.next(error);
        }
    }

    /** Of two members, the one whose ID sorts first starts the exchange after a registration or a return. */
    protected asksFirst(member: string): boolean {
        return this.context.peer.id < member;
    }

    protected remote(peerId: string) {
        return this.context.peer.to(peerId).controller<ReplicatedStateApi>(ReplicatedStateApi);
    }
}

function checkStateVector(stateVector: Uint8Array): void {
    if (stateVector.byteLength > MAX_STATE_VECTOR_BYTES) throw new MalformedMessage(`A state vector of ${stateVector.byteLength} bytes is more than ${MAX_STATE_VECTOR_BYTES}.`);
    try {
        Y.decodeStateVector(stateVector);
    } catch {
        throw new MalformedMessage('Refused a state vector that does not decode.');
    }
}

function definedOnly(options: Partial<StateLimits>): Partial<StateLimits> {
    const limits: Partial<StateLimits> = {};
    if (options.maxBytes !== undefined) limits.maxBytes = options.maxBytes;
    if (options.maxKeyLength !== undefined) limits.maxKeyLength = options.maxKeyLength;
    return limits;
}
