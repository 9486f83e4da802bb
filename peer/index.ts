/**
 * `@switchboard/peer`: the SDK — `Peer` (every built-in feature) or `PeerCore` with the features you pick, calls to
 * other peers by ID, presence, and the opt-in features. Node and browsers.
 *
 * @module @switchboard/peer
 */
export { Peer } from './peer';
export type { PeerOptions, PeerState } from './peer';
export { PeerCore } from './peer-core';
export type { PeerCoreOptions } from './peer-core';
export { chat } from './features/chat';
export { discovery } from './features/discovery';
export { relay } from './features/relay';
export { files } from './features/files';
export { collab } from './features/collab';
export type { PresenceMode } from './presence-follower';
export { RemotePeer } from './remote-peer';
export type { CallOptions } from './remote-peer';
export { CallerContext } from './caller-context';
export { WebStorageAdapter } from './storage/web-storage-adapter';
export { CircuitBreaker } from './circuit-breaker';
export type { CircuitState, CircuitBreakerOptions } from './circuit-breaker';
export type { BackoffOptions } from './backoff';
export type { ChatOptions } from './services/chat-options';
export { CollabDocument } from './services/collab-service';
export type { RelayOptions } from './services/relay-options';
// What `peer.chat`, `peer.files` … are, and the types the public API names (so the API reference documents them).
export { ChatService } from './services/chat-service';
export { DiscoveryService } from './services/discovery-service';
export { RelayService } from './services/relay-service';
export { FileService } from './services/file-service';
export { CollabService } from './services/collab-service';
export type { BroadcastOptions, BroadcastResult, BroadcastReply } from './broadcast';
export type { MulticastOutcome } from '@switchboard/protocol/internal';
export type { CallInvoker } from './remote-peer';
export type { CallDeadline, CallStage } from './call-deadline';
export type { Outbox, OutboxHandler, OutboxItem, OutboxRecovery, OutboxResult, Queued } from './outbox';
export type { OutboxEntry, OutboxState } from './storage/entities';
export type { CollabRefusal } from './services/collab-service';
export type { Discovery } from './services/discovery-service';
export type { DownloadProgress } from './services/file-service';
export type { PathChange, RelayPort } from './services/delivery-path';
export type { Sealing, SealingOptions, SealOptions } from './sealing/sealing';
export type { ContactKeys, KeyChange } from './sealing/contact-keys';
export type { LinkRole } from './features/links/link-proof';
export type { LinkState } from './features/links/direct-link';
export type { PeerDatabase } from './storage/peer-database';
// The type only, for a feature's FeatureContext; the class is @switchboard/peer/internal.
export type { PeerKernel } from './kernel';
export type { ChangeListeningAdapter } from './storage/web-storage-adapter';
export type { DirectLink } from './features/links/direct-link';
export type { IssuedGrant } from './features/grants/grant-entities';
export type { TransactionCoordinator } from './features/transactions/transaction-coordinator';
export type { TransactionParticipant } from './features/transactions/transaction-participant';
export type { Participation, RecordedVote } from './features/transactions/transaction-entities';
export type { PeerFeature, FeatureInstance, FeatureContext, FeatureHost, FeatureMap, FeatureApis } from './feature';
export { replicatedState, ReplicatedState, ReplicatedMap } from './features/state';
export type { OpenStateOptions, StateLimits, StateTraffic, MapChange } from './features/state';
export { grants, Grants } from './features/grants';
export type { GrantDecision, GrantsOptions, ProtectOptions, GrantClaims } from './features/grants';
export { directLinks, DirectLinks } from './features/links';
export type { DirectLinksOptions, LinkEvent, LinkInfo, LinkLimits, LinkPolicy, PeerConnectionClass } from './features/links';
export { transactions, Transactions } from './features/transactions';
export type { TransactionOptions, RunOptions, TransactionResult, ParticipantResult, TransactionContext, TransactionHandler, TransactionEvent } from './features/transactions';
