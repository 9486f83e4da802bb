/**
 * `@switchboard/peer/internal`: the SDK's parts below `Peer` (Deepkit's client and kernel with Switchboard's fixes),
 * for Switchboard's own packages and tools such as the test kit. Apps use `@switchboard/peer`: nothing here is stable
 * between versions.
 */
export { PeerClient } from './peer-client';
export type { SendOptions } from './peer-client';
export { PeerKernel, PeerSecurity } from './kernel';
export { peerInternals } from './peer-internals';
export type { PeerInternals } from './peer-internals';
