export { startSwitchboard, SwitchboardTestKit } from './test-kit';
export type { SwitchboardTestKitOptions } from './test-kit';
export { describeExchangeCompliance, RecordingEndpoint } from './exchange-compliance';
export type { ExchangeHarness } from './exchange-compliance';
