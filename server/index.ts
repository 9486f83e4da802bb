export { startBroker, createBrokerApp } from './app';
export type { RunningBroker } from './app';
export { BrokerConfig, ConfigError } from './config';
export type { PeerExchange, ExchangeEndpoint, FrameOrigin, PeerLocation, ExchangePresence, BrokerSummary, PeerOwner, RegisterOptions } from './exchange/peer-exchange';
export { InProcessPeerExchange } from './exchange/in-process-exchange';
export { NatsPeerExchange } from './cluster/nats-exchange';
export type { NatsExchangeOptions } from './cluster/nats-exchange';
// NatsUser with its runtime type (`export type` would drop it): code compiled with reflection checks it.
export * from './cluster/nats-permissions';
export { SwitchboardSecurity, PeerSession } from './security';
export { TokenStore } from './registry/token-store';
export type { PeerTokenStore, TokenGrant } from './registry/token-store';
export type { AuditKind } from './registry/entities';
