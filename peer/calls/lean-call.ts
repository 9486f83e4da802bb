import { RpcMessage, RpcTypes } from '@deepkit/rpc';
import { getBSONDeserializer } from '@deepkit/bson';
import { Type } from '@deepkit/type';
import { Disconnected, MalformedMessage, Timeout } from '@switchboard/protocol';

/** Reads the body `{ v: result }` of an answer: Deepkit's compiled deserializer of the action's result schema. */
export type ResultReader = (buffer: Uint8Array, offset: number) => { v?: unknown };

const readers = new WeakMap<Type, ResultReader>();

/** The compiled reader of a result schema, built once per action (the schema object is the action's, cached by Deepkit). */
export function resultReader(resultSchema: Type): ResultReader {
    let reader = readers.get(resultSchema);
    if (!reader) readers.set(resultSchema, reader = getBSONDeserializer<{ v?: unknown }>(undefined, resultSchema) as ResultReader);
    return reader;
}

/**
 * One call of ours waiting for its plain answer (the lean call path): it stands in the client's reply table where
 * Deepkit keeps an RpcMessageSubject, and settles one promise on the answer, an error frame, a disconnect or its
 * deadline. One timer, no subject, no chain of promises; the frames are Deepkit's own.
 */
export class PendingCall {
    protected timer?: ReturnType<typeof setTimeout>;
    protected settled = false;

    constructor(
        readonly id: number,
        protected readResult: ResultReader,
        protected resolve: (value: unknown) => void,
        protected reject: (error: unknown) => void,
        /** Forgets this call in the reply table. */
        protected forget: (id: number) => void,
        /** Who answers, for error messages: `peer "bob"`. */
        protected target: string,
        timeoutMs: number,
    ) {
        if (timeoutMs > 0) {
            // The error is built only when the timer fires: a stack per call would cost a caller a few percent.
            this.timer = setTimeout(() => this.fail(new Timeout(`No answer from ${target} within ${timeoutMs} ms.`, timeoutMs)), timeoutMs);
        }
    }

    /** A frame under this call's id (Deepkit's client hands replies to `next`). */
    next(message: RpcMessage): void {
        if (message.type === RpcTypes.ResponseActionSimple) {
            let value: unknown;
            try {
                value = this.readResult(message.getBuffer(), message.bodyOffset).v;
            } catch (error) {
                return this.fail(new MalformedMessage(`The answer of ${this.target} could not be read (${String(error instanceof Error ? error.message : error).slice(0, 200)}).`));
            }
            return this.succeed(value);
        }
        if (message.type === RpcTypes.Error) {
            let error: unknown;
            try {
                error = message.getError();
            } catch (caught) {
                error = new MalformedMessage(`The error answer of ${this.target} could not be read.`);
            }
            return this.fail(error);
        }
        this.fail(new MalformedMessage(`${this.target} answered a plain call with a frame of type ${message.type}.`));
    }

    /** The connection closed (or the answer failed in its handler). */
    disconnect(error?: Error): void {
        this.fail(error ?? new Disconnected());
    }

    /** Deepkit's name for forgetting a subject: the table is being cleared. */
    release(): void {
        this.end();
    }

    protected succeed(value: unknown): void {
        if (!this.end()) return;
        this.resolve(value);
    }

    fail(error: unknown): void {
        if (!this.end()) return;
        this.reject(error);
    }

    /** False if it had ended already. */
    protected end(): boolean {
        if (this.settled) return false;
        this.settled = true;
        if (this.timer) clearTimeout(this.timer);
        this.forget(this.id);
        return true;
    }
}
