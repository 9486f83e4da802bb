/**
 * `@switchboard/protocol`: the contracts peers and the broker share — peer IDs, the typed errors that cross the wire,
 * the broker's API and each built-in feature's controller interface with its entities. What only Switchboard's own
 * packages need (frame layout, wire encoders, Deepkit patches) is `@switchboard/protocol/internal`.
 *
 * @module @switchboard/protocol
 */
export * from './errors';
export * from './peer-id';
export * from './broker-api';
export * from './dashboard';
export * from './action-groups';
export * from './chat-api';
export * from './discovery-api';
export * from './relay-api';
export * from './files-api';
export * from './collab-api';
export * from './links-api';
export * from './http-actions-api';
export * from './transactions-api';
export * from './grants-api';
export * from './state-api';
