/**
 * `@switchboard/protocol/internal`: what the broker, the peer SDK and the test kit share beyond the public contracts —
 * frame layout and checks, Switchboard's own frame types, bounded validation, and the run-time patches of Deepkit
 * (loading this module applies them). Apps should not need it: nothing here is stable between versions.
 */
export * from '../deepkit/patches';
export * from '../deepkit/frame-layout';
export * from '../deepkit/error-matchers';
export * from '../wire';
export * from '../frame-check';
export * from '../outgoing-frames';
export * from '../event-loop-turn';
export * from '../validation';
