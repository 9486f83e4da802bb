import { RemoteController } from '@deepkit/rpc';
import { ValidationError, validatedDeserialize } from '@deepkit/type';
import { Observable, Subject } from 'rxjs';
import {
    BrokerApi, CHAT_RELAY_KIND, ChatApi, ChatMessage, DeliveryReceipt, DeliveryStatus, MessagePath, PeerNotFound, PeerOffline, RelayApi, RelayPayload,
    TRUSTED_RELAY_CAPABILITY,
} from '@switchboard/protocol';
import { RemotePeer } from '../remote-peer';
import { ChatRecord } from '../storage/entities';
import { PeerDatabase } from '../storage/peer-database';
import type { Sealing } from '../sealing';
import { sealRelayPayload, sendChatMessage } from '../sealing/sealed-payloads';

/** What the paths need of the peer: calls, and the broker's registry (to read whom a recipient trusts as a relay). */
export interface PathHost {
    readonly id: string;
    readonly state?: string;
    to(peerId: string): RemotePeer;
    /** The direct path the peer offers to `peerId` (the links feature), which says whether a call made now takes a link. */
    directPath?(peerId: string): unknown;
    readonly broker?: RemoteController<BrokerApi>;
    /** Seals messages for recipients with a key (absent: plaintext only). */
    readonly sealing?: Sealing;
}

/** What the paths need of the relay feature: whom this peer trusts, receipts, and a hand-off of relayed chat messages. */
export interface RelayPort {
    trusts(peerId: string): boolean;
    readonly receipts$: Observable<DeliveryReceipt>;
    consume(kind: string, handler: (originalSender: string, payload: RelayPayload, via: string) => Promise<void>): void;
}

/** What the paths tell the chat. */
export interface ChatPathListener {
    /** A chat message a relay peer handed over for `from` (the relay vouches for the sender). */
    receive(from: string, message: ChatMessage, path: MessagePath): Promise<DeliveryStatus>;
    /** A relay reports the message `id` it held for `recipient` delivered. */
    relayDelivered(recipient: string, id: string): Promise<void>;
}

/** The conversation with `peerId` now takes `path` (the first message, or a different path than the last one). */
export interface PathChange {
    peerId: string;
    path: MessagePath;
}

/** Relays tried per message, at most: candidates are tried in turn until one holds the message. */
const MAX_RELAYS_TRIED = 3;
/** Conversations whose last path is remembered (for `changes$`); the oldest are forgotten first. */
const MAX_REMEMBERED = 1000;

/**
 * The path of each chat message: a live direct link, else the broker; when the recipient is offline, a relay peer
 * both this peer and the recipient trust (the recipient publishes its trusted relays as `via:` capabilities, which
 * the broker's registry keeps while it is offline); else the sender's outbox, which tries again when the recipient
 * is back. The relay holds the message durably and pushes it when the recipient comes online; the recipient's chat
 * stores it once by sender and message id, however often and by whichever path it arrives, and the relay's receipt
 * marks it delivered here.
 *
 * Order: while messages held at a relay are not confirmed, later messages to that recipient follow them through the
 * relay (its store keeps their order), so a conversation never overtakes itself when the recipient comes back.
 */
export class ChatPaths {
    protected readonly changes = new Subject<PathChange>();
    readonly changes$: Observable<PathChange> = this.changes.asObservable();
    protected relay?: RelayPort;
    /** Per recipient: ids of messages held at a relay, not yet reported delivered (loaded from storage on first use). */
    protected atRelay = new Map<string, Set<string>>();
    protected lastPath = new Map<string, MessagePath>();

    constructor(protected host: PathHost, protected database: PeerDatabase) {
    }

    /** Lets messages to offline recipients go through relays, and hands relayed chat messages to `chat`. */
    useRelay(relay: RelayPort, chat: ChatPathListener): void {
        this.relay = relay;
        relay.consume(CHAT_RELAY_KIND, async (from, payload) => {
            // Checked like a message that came as a call (ValidationError, which the carrier gets back).
            let body: unknown;
            try {
                body = JSON.parse(payload.body);
            } catch {
                throw ValidationError.from([{ path: 'body', code: 'json', message: `The relayed chat message from "${from}" is not JSON.` }]);
            }
            const message = validatedDeserialize<ChatMessage>(body);
            if (message.id !== payload.id) throw ValidationError.from([{ path: 'id', code: 'id', message: 'A relayed chat message must have the id of its payload.' }]);
            await chat.receive(from, message, 'relay');
        });
        relay.receipts$.subscribe(receipt => {
            this.atRelay.get(receipt.recipient)?.delete(receipt.payloadId);
            // Also for receipts arriving after a restart, before anything was sent to that recipient: the chat moves
            // only a message it sent through a relay, and only forward.
            void chat.relayDelivered(receipt.recipient, receipt.payloadId).catch(() => undefined);
        });
    }

    /**
     * Carries `message` to `recipient` by the best path there is now. Rejects with the error of the last path tried
     * (PeerOffline when the recipient is away and no relay took it): the outbox keeps the message and tries again.
     */
    async deliver(recipient: string, message: ChatMessage): Promise<Exclude<MessagePath, 'outbox'>> {
        let away: unknown;
        if (!await this.heldAtRelay(recipient)) {
            try {
                return this.took(recipient, await this.call(recipient, message));
            } catch (error) {
                if (!isAway(error) || !this.relay) throw error;
                away = error;
            }
        }
        for (const relay of await this.relaysFor(recipient)) {
            try {
                await this.host.to(relay).controller<RelayApi>(RelayApi).store(recipient, await sealRelayPayload(this.host.sealing, recipient, new RelayPayload(message.id, CHAT_RELAY_KIND, JSON.stringify(message))));
            } catch {
                continue;
            }
            this.atRelay.get(recipient)!.add(message.id);
            return this.took(recipient, 'relay');
        }
        // No relay holds it (none online, or none both trust): the recipient directly, or the outbox.
        if (away) throw away;
        return this.took(recipient, await this.call(recipient, message));
    }

    /** Records that the conversation with `peerId` waits in the outbox now. */
    queued(peerId: string): void {
        this.took(peerId, 'outbox');
    }

    /** Whether a message to `peerId` sent now takes a direct link (it does even while the broker is away). */
    linked(peerId: string): boolean {
        return linkedNow(this.host, peerId);
    }

    /** Through the broker, or a direct link when one is open at the moment the call is made. */
    protected async call(recipient: string, message: ChatMessage): Promise<'direct' | 'broker'> {
        const direct = this.linked(recipient);
        // Made in the same turn as the check above: the links feature picks the link synchronously when the call starts.
        // Sealed for the recipient when it has a key (see peer.sealing), else in plaintext.
        await sendChatMessage(this.host.to(recipient).controller<ChatApi>(ChatApi), this.host.sealing, recipient, message);
        return direct ? 'direct' : 'broker';
    }

    protected async relaysFor(recipient: string): Promise<string[]> {
        return this.relay ? trustedRelaysFor(this.host, this.relay, recipient) : [];
    }

    /** Whether messages to `recipient` wait at a relay, unconfirmed: then later ones follow them there. */
    protected async heldAtRelay(recipient: string): Promise<boolean> {
        if (!this.relay) return false;
        let held = this.atRelay.get(recipient);
        if (!held) {
            // After a restart: what went to a relay and is not reported delivered yet.
            const records = await this.database.query(ChatRecord).filter({ peerId: recipient, direction: 'out', path: 'relay', status: 'queued' }).select('id').find();
            held = this.atRelay.get(recipient) ?? new Set(records.map(record => record.id));
            this.atRelay.set(recipient, held);
        }
        return held.size > 0;
    }

    protected took<P extends MessagePath>(peerId: string, path: P): P {
        if (this.lastPath.get(peerId) !== path) {
            this.lastPath.delete(peerId);
            if (this.lastPath.size >= MAX_REMEMBERED) this.lastPath.delete(this.lastPath.keys().next().value!);
            this.lastPath.set(peerId, path);
            this.changes.next({ peerId, path });
        }
        return path;
    }
}

/** What the links feature's direct path answers (structurally: chat does not depend on the feature). */
interface DirectPathProbe {
    isDirect?(peerId: string): boolean;
}

/**
 * Relays `recipient` announced it trusts and this peer trusts too (exact IDs first; patterns match online peers
 * announcing `relay`). Both must trust it: the recipient takes the original sender's name from it, and this peer
 * takes its delivery receipts.
 */
export async function trustedRelaysFor(host: PathHost, relay: Pick<RelayPort, 'trusts'>, recipient: string): Promise<string[]> {
    const broker = host.broker;
    if (!broker || host.state !== 'registered') return [];
    const published = await broker.getPeer(recipient).then(info => info.capabilities, () => [] as string[]);
    const patterns = published.filter(each => each.startsWith(TRUSTED_RELAY_CAPABILITY)).map(each => each.slice(TRUSTED_RELAY_CAPABILITY.length));
    const candidates = patterns.filter(pattern => !pattern.endsWith('*'));
    const prefixes = patterns.filter(pattern => pattern.endsWith('*')).map(pattern => pattern.slice(0, -1));
    if (prefixes.length) {
        const online = await broker.listPeers({ online: true, capability: 'relay' }).catch(() => []);
        candidates.push(...online.map(peer => peer.id).filter(id => prefixes.some(prefix => id.startsWith(prefix))));
    }
    return [...new Set(candidates)].filter(id => id !== recipient && id !== host.id && relay.trusts(id)).slice(0, MAX_RELAYS_TRIED);
}

/** Whether a call to `peerId` made now takes a direct link (the links feature, when the peer has it). */
export function linkedNow(host: PathHost, peerId: string): boolean {
    return (host.directPath?.(peerId) as DirectPathProbe | undefined)?.isDirect?.(peerId) ?? false;
}

/** The recipient is not there now (as opposed to refusing the message, or this peer being cut off). */
export function isAway(error: unknown): boolean {
    return error instanceof PeerOffline || error instanceof PeerNotFound;
}

/** Trusted relays published at most (each a capability). */
const MAX_PUBLISHED_RELAYS = 16;

/**
 * `capabilities` and a `via:` capability per relay in `trustedRelays`, which senders read to pick a relay this peer
 * accepts. A pattern too long for a capability (64 characters with its prefix) is not published.
 */
export function withTrustedRelays(capabilities: readonly string[], trustedRelays: readonly string[] = []): string[] {
    const published = trustedRelays.map(pattern => TRUSTED_RELAY_CAPABILITY + pattern).filter(each => each.length <= 64).slice(0, MAX_PUBLISHED_RELAYS);
    return [...new Set([...capabilities.filter(each => !each.startsWith(TRUSTED_RELAY_CAPABILITY)), ...published])];
}
