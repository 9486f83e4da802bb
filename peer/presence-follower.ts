import { RemoteController } from '@deepkit/rpc';
import { Observable, Subscription } from 'rxjs';
import { BrokerApi, MAX_WATCH_IDS_PER_CALL, PresenceBatch, PresenceEvent, Timeout } from '@switchboard/protocol';
import { nextTurn } from '@switchboard/protocol/internal';

/**
 * Whose presence a peer follows (`PeerOptions.presence`):
 * - `'interest'` (default): the peers it deals with — every peer it called or was given to (`peer.to(id)`), its
 *   outbox's recipients, its chat peers and groups, its collaborators, and what the app adds with `watchPresence`.
 *   The broker's work per registration then stays the same however many peers are online.
 * - `'all'`: every peer of the broker (a dashboard, a directory app); each join anywhere reaches this peer.
 * - `false`: none; `presence$` stays silent and no outbox waits for a peer's return (it is flushed on registration).
 */
export type PresenceMode = 'interest' | 'all' | false;

/** Most IDs taken from storage into the interest at registration: the broker's limit per connection is 10,000. */
const STORED_INTEREST_MAX = 5000;

export interface PresenceFollowerHost {
    readonly broker: RemoteController<BrokerApi>;
    readonly callTimeoutMs: number;
    /** Who this peer deals with, from its storage (outbox recipients, and what each feature knows): at most `limit`. */
    storedInterest(limit: number): Promise<Iterable<string>>;
}

/**
 * Follows the broker's batched presence for one peer: what it watches (by interest, everyone or nothing), the
 * subscription per registration, and new IDs sent to the broker once per event-loop turn.
 */
export class PresenceFollower {
    /** IDs this peer follows, across reconnects. */
    protected readonly interest = new Set<string>();
    /** IDs added since the last `watch` sent to the broker. */
    protected unsent = new Set<string>();
    /** The `watch` call of this turn's new IDs, until it is answered. */
    protected sending?: Promise<void>;
    protected subscription?: Subscription;
    /** Deepkit holds an action's Observable only weakly: kept for as long as we follow. */
    protected stream?: Observable<PresenceBatch>;
    protected following = false;

    constructor(
        readonly mode: PresenceMode,
        protected host: PresenceFollowerHost,
        protected selfId: string,
        /** `answer`: the state of an ID just watched, as the broker answered it (no news of a change). */
        protected onEvent: (event: PresenceEvent, answer: boolean) => void,
        protected onError: (error: Error) => void,
    ) {
    }

    /**
     * Follows `peerIds` from now on (interest mode); their current state arrives on presence$. Resolves once the
     * broker follows them for this peer (at once while not registered: they are sent with the next registration).
     */
    watch(peerIds: Iterable<string>): Promise<void> {
        if (this.mode !== 'interest') return Promise.resolve();
        for (const id of peerIds) {
            if (id === this.selfId || this.interest.has(id)) continue;
            this.interest.add(id);
            this.unsent.add(id);
        }
        if (!this.following) return Promise.resolve();
        if (!this.unsent.size) return this.sending ?? Promise.resolve();
        // The IDs of one turn (a burst of calls to new peers) go in one call.
        this.sending ??= new Promise<void>(resolve => nextTurn(resolve)).then(() => {
            this.sending = undefined;
            return this.sendUnsent();
        });
        const sent = this.sending;
        sent.catch(error => this.onError(error));
        return sent;
    }

    /** Subscribes after a registration and resolves once the snapshot of what it follows has arrived. */
    async follow(): Promise<void> {
        this.stop();
        if (this.mode === false) return;
        if (this.mode === 'interest') {
            for (const id of await this.storedInterest()) if (id !== this.selfId) this.interest.add(id);
            // Everything, watched again: a new broker (or a restarted one) knows nothing of this connection's interest.
            this.unsent = new Set(this.interest);
            await this.sendUnsent(false);
        }
        let synced!: () => void;
        const snapshotDone = new Promise<void>(resolve => synced = resolve);
        this.stream = await this.host.broker.presenceBatches(this.mode === 'all');
        this.subscription = this.stream.subscribe({
            next: batch => {
                for (const event of batch.events) this.onEvent(event, false);
                if (batch.synced) synced();
            },
            error: () => synced(),
        });
        this.following = true;
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([snapshotDone, new Promise<void>((resolve, reject) => {
            timer = setTimeout(() => reject(new Timeout('The broker did not send the presence snapshot in time.', this.host.callTimeoutMs)), this.host.callTimeoutMs);
        })]).finally(() => clearTimeout(timer));
        // IDs added while subscribing.
        if (this.unsent.size) void this.watch([]);
    }

    stop(): void {
        this.following = false;
        this.subscription?.unsubscribe();
        this.subscription = undefined;
        this.stream = undefined;
    }

    /**
     * Sends the unsent IDs in bounded calls. `report`: the answer's state goes to presence$ (a live watch); on
     * registration the stream's snapshot reports it instead.
     */
    protected async sendUnsent(report = true): Promise<void> {
        const ids = [...this.unsent];
        this.unsent.clear();
        for (let start = 0; start < ids.length; start += MAX_WATCH_IDS_PER_CALL) {
            const states = await this.host.broker.watch(ids.slice(start, start + MAX_WATCH_IDS_PER_CALL));
            if (report) for (const event of states) this.onEvent(event, true);
        }
    }

    /** Who this peer deals with, from its storage: outbox recipients, chat peers and groups, collaborators. */
    protected async storedInterest(): Promise<Set<string>> {
        return new Set([...new Set(await this.host.storedInterest(STORED_INTEREST_MAX))].slice(0, STORED_INTEREST_MAX));
    }
}
