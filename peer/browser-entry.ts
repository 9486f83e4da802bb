/**
 * The entry point of the ready browser bundle, `@switchboard/peer/browser/switchboard-peer.mjs`: the SDK, with
 * Deepkit inside, for a page that imports it without a bundler. It adds the Deepkit names such a page needs to name
 * the controllers it calls (a second copy of @deepkit/rpc beside the bundle's would not work).
 */
export * from './index';
export { ControllerSymbol, rpc } from '@deepkit/rpc';
