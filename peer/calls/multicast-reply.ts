import { RpcMessage, RpcMessageSubject, RpcTypes } from '@deepkit/rpc';
import { deserializeBSONWithoutOptimiser } from '@deepkit/bson';
import { Disconnected, MalformedMessage, Timeout } from '@switchboard/protocol';
import { BroadcastReply } from '../broadcast';

/** One multicast target's answer, awaited under the message id reserved for it. */
export interface MulticastReply<R> {
    answer: Promise<BroadcastReply<R>>;
    cancel(): void;
}

/**
 * Waits for the reply under `id` (a multicast copy's answer) in the client's `replies`, resolving with its result or
 * error: never rejects, and settles within `timeoutMs`.
 */
export function awaitMulticastReply<R>(replies: Map<number, RpcMessageSubject>, id: number, target: string, timeoutMs: number): MulticastReply<R> {
    let settle!: (reply: BroadcastReply<R>) => void;
    const answer = new Promise<BroadcastReply<R>>(resolve => settle = resolve);
    const timer = setTimeout(() => {
        replies.delete(id);
        settle({ error: new Timeout(`No answer from peer "${target}" to the broadcast within ${timeoutMs} ms.`, timeoutMs, 'action') });
    }, timeoutMs);
    const done = (reply: BroadcastReply<R>) => {
        clearTimeout(timer);
        replies.delete(id);
        settle(reply);
    };
    const subject = new RpcMessageSubject(() => undefined, () => replies.delete(id));
    replies.set(id, subject);
    subject.onReply((message: RpcMessage) => {
        try {
            if (message.type === RpcTypes.Error) return done({ error: message.getError() });
            done({ result: (deserializeBSONWithoutOptimiser(message.getBuffer(), message.bodyOffset) as { v: R }).v });
        } catch (error) {
            done({ error: new MalformedMessage(`The answer of peer "${target}" could not be read.`) });
        }
    });
    return { answer, cancel: () => done({ error: new Disconnected('The broadcast ended before this target answered.') }) };
}
