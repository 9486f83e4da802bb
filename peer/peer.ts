import { FeatureMap } from './feature';
import { chat } from './features/chat';
import { collab } from './features/collab';
import { discovery } from './features/discovery';
import { files } from './features/files';
import { relay } from './features/relay';
import { PeerCore } from './peer-core';
import { PeerCoreOptions } from './peer-core-options';
import { ChatOptions } from './services/chat-options';
import { ChatService } from './services/chat-service';
import { CollabService } from './services/collab-service';
import { DiscoveryService } from './services/discovery-service';
import { FileService } from './services/file-service';
import { RelayService } from './services/relay-service';
import { RelayOptions } from './services/relay-options';

export type { PeerState } from './session/peer-session';

export interface PeerOptions<F extends FeatureMap = FeatureMap> extends PeerCoreOptions<F> {
    /** Limits of this peer as a relay for others. */
    relay?: Partial<RelayOptions>;
    /** What other peers may make this peer store through its chat (unread messages per sender, groups per owner). */
    chat?: Partial<ChatOptions>;
}

/**
 * A peer: connects to a broker, registers its ID, serves the controllers it exposes, and calls other peers by ID.
 *
 * ```ts
 * const alice = await Peer.connect({ url, id: 'alice' });
 * alice.expose(MyController, MyApi.path);
 * await alice.to('bob').controller<MyApi>(MyApi.path).hello();
 * await alice.close();
 * ```
 *
 * Every call ends: with its result, a typed error, or Timeout. After a lost connection the peer reconnects with
 * exponential backoff and jitter, registers the same ID again and re-announces its capabilities.
 *
 * A Peer carries every built-in feature (chat, discovery, relay, files, collab) as its own members; `PeerCore`
 * (`@switchboard/peer/core`) is the same peer with only the features it is given.
 */
export class Peer<F extends FeatureMap = Record<never, never>> extends PeerCore<F> {
    /** This peer's chat: `peer.chat.send('bob', 'hi')`, history, groups, read receipts. */
    readonly chat: ChatService;
    /** `peer.discovery.discover('bob')`: live peer → other peers → cache → broker. */
    readonly discovery: DiscoveryService;
    /** Relay and store-and-forward: `peer.relay.received$`, `peer.relay.receipts$`; call a relay with `to(r).relay`. */
    readonly relay: RelayService;
    /** `peer.files.share(path)`, `peer.files.download(peerId, fileId, destination)`. */
    readonly files: FileService;
    /** `await peer.collab.open('notes', { collaborators: ['bob'] })`: a live Yjs document. */
    readonly collab: CollabService;

    protected constructor(options: PeerOptions<F>) {
        super(options, { chat: chat(options.chat), discovery: discovery(), relay: relay(options.relay), files: files(), collab: collab() });
        const builtins = this.featureSet.builtinApis;
        this.chat = builtins.chat as ChatService;
        this.discovery = builtins.discovery as DiscoveryService;
        this.relay = builtins.relay as RelayService;
        this.files = builtins.files as FileService;
        this.collab = builtins.collab as CollabService;
        // A chat message for a peer that is away may go through a relay it trusts.
        this.chat.useRelay(this.relay);
    }

    /** Connects, registers and announces; rejects with the broker's typed error (PeerIdTaken, AccessDenied, …). */
    static override async connect<F extends FeatureMap = Record<never, never>>(options: PeerOptions<F>): Promise<Peer<F>> {
        const peer = Peer.create(options);
        await peer.start();
        return peer;
    }

    /**
     * A peer that is not connected yet: subscribe to its streams (`chat.updates$`, `relay.received$`,
     * `relay.receipts$`, …) first, so nothing that arrives while it connects goes unseen, then `await start()`.
     */
    static override create<F extends FeatureMap = Record<never, never>>(options: PeerOptions<F>): Peer<F> {
        return new Peer<F>(options);
    }
}
