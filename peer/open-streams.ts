import {
    createRpcMessage,
    readBinaryRpcMessage,
    rpcEncodeError,
    rpcError,
    rpcResponseActionObservableSubscriptionError,
    RpcMessage,
    RpcMessageSubject,
    RpcTypes,
    serializeBinaryRpcMessage,
} from '@deepkit/rpc';
import { typeOf } from '@deepkit/type';

/**
 * The calls of a client whose answer was a stream (an Observable, Subject or BehaviorSubject), so they can be ended
 * when the connection is gone. Deepkit's client fails a *pending* call when its transport closes, but a call that
 * already answered with a stream keeps its subscribers waiting forever: nothing would ever arrive for them again.
 *
 * Each is ended the way its serving side would end it: an Error frame (which errors every subscriber of an
 * Observable) and an ObservableError frame (which errors a Subject or BehaviorSubject). Feeding the frames to the
 * call's own subject leaves Deepkit's bookkeeping (subscribers, finalizers, released ids) as an answer from the
 * other side would; tests/peer/streams-end.test.ts fails loudly if a Deepkit upgrade changes that protocol.
 */
export class OpenStreams {
    protected ids = new Set<number>();

    get size(): number {
        return this.ids.size;
    }

    /** Called for every reply the client reads: one that answers a call with a stream marks that call. */
    noticed(message: RpcMessage): void {
        if (message.type === RpcTypes.ResponseActionObservable) this.ids.add(message.id);
    }

    /** The call's subject was released (the stream ended, was unsubscribed or garbage-collected). */
    forget(id: number): void {
        this.ids.delete(id);
    }

    /** Errors every stream still open with `error`. */
    endAll(replies: ReadonlyMap<number, RpcMessageSubject>, error: Error): void {
        const ids = [...this.ids];
        this.ids.clear();
        if (!ids.length) return;
        const encoded = rpcEncodeError(error);
        for (const id of ids) {
            const subject = replies.get(id);
            if (!subject) continue;
            subject.next(readBinaryRpcMessage(serializeBinaryRpcMessage(createRpcMessage(id, RpcTypes.Error, encoded, undefined, typeOf<rpcError>()))));
            subject.next(readBinaryRpcMessage(serializeBinaryRpcMessage(createRpcMessage(
                id, RpcTypes.ResponseActionObservableError, { ...encoded, id: 0 }, undefined, typeOf<rpcResponseActionObservableSubscriptionError>(),
            ))));
        }
    }
}
