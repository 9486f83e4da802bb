import { NotRegistered } from '@switchboard/protocol';

/**
 * Who is calling, as the broker vouched for it (CallerIdentity frame). Inject it into a peer controller:
 *
 * ```ts
 * class ChatController { constructor(private caller: CallerContext) {} }
 * ```
 *
 * One instance per calling connection; `peerId` is unset for a caller that did not register an ID.
 */
export class CallerContext {
    constructor(
        /** Hex id of the caller's broker connection. */
        public readonly connectionId: string,
        public peerId: string | undefined = undefined,
        public session: string = '',
        /** Whether the caller decodes Switchboard's error classes; a stock Deepkit caller gets plain errors. */
        public typedErrors: boolean = false,
    ) {
    }

    /** The caller's peer ID; NotRegistered for anonymous callers, for actions that need to know who asks. */
    requirePeerId(): string {
        if (!this.peerId) throw new NotRegistered('This action needs a registered caller: register a peer ID first.');
        return this.peerId;
    }
}
