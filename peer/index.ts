export { PeerClient } from './peer-client';
export type { SendOptions } from './peer-client';
export { CallerContext } from './caller-context';
