export * from './errors';
export * from './peer-id';
export * from './broker-api';
export * from './wire';
export * from './validation';
export * from './action-groups';
