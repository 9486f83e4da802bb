/**
 * `@switchboard/peer/core`: the lean entry. `PeerCore` is a peer with only the features it is given — its module graph
 * imports none of the built-in services — so a browser app that uses chat alone bundles chat alone:
 *
 * ```ts
 * import { PeerCore } from '@switchboard/peer/core';
 * import { chat } from '@switchboard/peer/features/chat';
 *
 * const alice = await PeerCore.connect({ url, id: 'alice', features: { chat: chat() } });
 * await alice.features.chat.send('bob', 'hi');
 * ```
 *
 * Each built-in has its own entry (`@switchboard/peer/features/chat`, `…/discovery`, `…/relay`, `…/files`,
 * `…/collab`); `Peer` from `@switchboard/peer` is PeerCore with all five as `peer.chat` …
 */
export { PeerCore } from './peer-core';
export type { PeerCoreOptions, PeerState } from './peer-core';
export type { PresenceMode } from './presence-follower';
export { RemotePeer } from './remote-peer';
export type { CallOptions } from './remote-peer';
export { CallerContext } from './caller-context';
export { WebStorageAdapter } from './storage/web-storage-adapter';
export type { CircuitBreaker, CircuitState, CircuitBreakerOptions } from './circuit-breaker';
export type { BackoffOptions } from './backoff';
export type { PeerFeature, FeatureInstance, FeatureContext, FeatureHost, FeatureMap, FeatureApis } from './feature';
