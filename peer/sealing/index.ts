export { Sealing, defaultSealingOptions } from './sealing';
export type { SealingHost, SealingOptions } from './sealing';
export type { KeyChange } from './contact-keys';
export { fingerprintOf } from './key-pair';
