/**
 * `@switchboard/testing`: a broker and peers in one process for an app's tests, and the compliance suites for
 * anyone writing a peer exchange or a cluster bus.
 *
 * @module @switchboard/testing
 */
export { startSwitchboard, SwitchboardTestKit } from './test-kit';
export type { SwitchboardTestKitOptions } from './test-kit';
export { describeExchangeCompliance, RecordingEndpoint } from './exchange-compliance';
export type { ExchangeHarness } from './exchange-compliance';
export { describeClusterBusCompliance } from './cluster-bus-compliance';
export type { ClusterBusHarness } from './cluster-bus-compliance';
