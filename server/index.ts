/**
 * `@switchboard/broker`: the broker to embed (`startBroker`), its configuration, security and peer exchanges (one
 * process, or a cluster over NATS or an in-memory bus). The `switchboard` command runs it standalone.
 *
 * @module @switchboard/broker
 */
export { startBroker, createBrokerApp } from './app';
export type { RunningBroker, BrokerAppOptions } from './app';
export { BrokerConfig, ConfigError } from './config';
export type { PeerExchange, ExchangeEndpoint, FrameOrigin, PeerLocation, ExchangePresence, BrokerSummary, PeerOwner, RegisterOptions } from './exchange/peer-exchange';
export { InProcessPeerExchange } from './exchange/in-process-exchange';
export { NatsPeerExchange } from './cluster/nats-exchange';
export type { NatsExchangeOptions } from './cluster/nats-exchange';
export { ClusterPeerExchange } from './cluster/cluster-exchange';
export type { ClusterExchangeOptions } from './cluster/cluster-exchange';
export { KeyConflict } from './cluster/bus/cluster-bus';
export type { ClusterBus, ClusterBusProvider, BusEvent, BusSubscription, KeyValueOptions, BusKeyValue, BusEntry, BusWatch, WatchOptions } from './cluster/bus/cluster-bus';
export { MemoryBus, MemoryBusConnection } from './cluster/bus/memory-bus';
// NatsUser with its runtime type (`export type` would drop it): code compiled with reflection checks it.
export * from './cluster/nats-permissions';
export { SwitchboardSecurity, PeerSession } from './security';
export { TokenStore } from './registry/token-store';
export type { PeerTokenStore, TokenGrant } from './registry/token-store';
export type { AuditKind } from './registry/entities';
export type { PeerToken } from './registry/entities';
export type { ConnectionIdentity } from './security';
export type { AuditRowLike, RouteResult } from './exchange/peer-exchange';
