// Deepkit's BSON writer copies binaries byte by byte; this installs a block copy (see the module).
import '@switchboard/protocol/internal';
import {
    ClientTransportAdapter,
    createRpcMessage,
    createRpcMessagePeer,
    ControllerDefinition,
    RemoteController,
    RpcClient,
    RpcControllerState,
    RpcKernel,
    RpcMessage,
    RpcMessageDefinition,
    RpcMessageSubject,
    RpcError,
    RpcTypes,
} from '@deepkit/rpc';
import { ReceiveType, resolveReceiveType, typeOf } from '@deepkit/type';
import { serializeBSONWithoutOptimiser } from '@deepkit/bson';
import { Subject } from 'rxjs';
import { BroadcastResult, summarize } from './broadcast';
import { Disconnected, MalformedMessage, Timeout } from '@switchboard/protocol';
import { connectionKey, decodeCallerIdentity, handedOn, MulticastRequest, MulticastResultBody, Route, SwitchboardFrame } from '@switchboard/protocol/internal';
import { CallerConnections } from './caller-connections';
import { InboundFrameGuard } from './inbound-frames';
import { OpenStreams } from './open-streams';
import { ServedCalls } from './served-calls';
import { PeerKernel, PeerKernelConnection } from './kernel';
import { awaitMulticastReply } from './calls/multicast-reply';
import { LeanServing } from './calls/lean-serving';
import { PendingCall, resultReader } from './calls/lean-call';
import { primeActionTypes } from './calls/known-types';

export interface SendOptions {
    dontWaitForConnection?: boolean;
    connectionId?: number;
    peerId?: string;
    /** Milliseconds until the call fails with Timeout unless a first reply arrived. */
    timeout?: number;
}

export interface PeerClientOptions {
    /**
     * Calling connections whose state (identity, kernel connection) is kept; beyond it the least recently active
     * caller is forgotten, so a flood of distinct sources cannot grow memory without bound.
     */
    maxCallers: number;
}

export const defaultPeerClientOptions: PeerClientOptions = { maxCallers: 10_000 };

/**
 * Deepkit's `RpcClient`, fixed for peer-to-peer use (see shared/DESIGN.md):
 * - `timeout` is honoured (stock: ignored) and fails the call with Timeout;
 * - follow-up messages of a peer call (observable subscribe/unsubscribe, …) go to the peer, not the broker;
 * - each calling connection gets a kernel connection of its own, with a CallerContext the broker vouched for
 *   (stock: one shared connection, colliding message ids, no identity);
 * - a disconnect fails every pending call with Disconnected, and errors every open stream with it (OpenStreams);
 * - whatever arrives is checked first (InboundFrameGuard): a malformed or hostile frame is dropped and counted,
 *   never thrown into the WebSocket's listener, where it would end the process.
 */
export class PeerClient extends RpcClient {
    /** The ID the broker accepted for this client; peer frames for other IDs are ignored. */
    servedPeerId?: string;
    /** Frames dropped since this client was created: `inbound.droppedCount`, `inbound.dropped$`. */
    readonly inbound: InboundFrameGuard;
    /** Each calling connection's identity and kernel connection (at most `maxCallers`). */
    protected callers: CallerConnections;
    protected options: PeerClientOptions;
    /** The broker is draining (SwitchboardFrame.Drain): finish what is in flight and move to another broker. */
    readonly drain$ = new Subject<void>();
    /** Calls from other peers this client is serving (their answer not written yet); `served$` after each answer. */
    readonly serving = new ServedCalls();
    /** Calls of ours answered with a stream: ended with Disconnected when the connection goes. */
    protected readonly openStreams = new OpenStreams();
    /** Answers plain calls from other peers without Deepkit's per-call machinery (calls/lean-serving.ts). */
    protected readonly leanServing = new LeanServing();

    constructor(transport: ClientTransportAdapter, kernel?: RpcKernel, options: Partial<PeerClientOptions> = {}) {
        super(new InboundFrameGuard(transport));
        this.inbound = this.transport as InboundFrameGuard;
        this.options = { ...defaultPeerClientOptions, ...options };
        if (kernel) this.peerKernel = kernel;
        this.callers = new CallerConnections(this, this.serving, this.options.maxCallers);
    }

    /** Calling connections this client keeps state for. */
    get callerCount(): number {
        return this.callers.size;
    }

    /** Callers forgotten to stay within `maxCallers`. */
    get callersEvicted(): number {
        return this.callers.evicted;
    }

    /**
     * Tells the broker, before anything else on a new connection, that this client decodes Switchboard's error
     * classes (SwitchboardFrame.Hello); without it the broker answers with plain errors a stock client can decode.
     */
    protected override async onHandshake(): Promise<Uint8Array | undefined> {
        this.transporter.send(createRpcMessage(0, SwitchboardFrame.Hello));
        return super.onHandshake();
    }

    /** The kernel that serves this peer's controllers; CallerContext is provided per calling connection. */
    static createPeerKernel(): PeerKernel {
        return new PeerKernel();
    }

    protected override onMessage(message: RpcMessage): void {
        try {
            this.dispatch(message);
        } catch (error) {
            this.frameFailed(message, error);
        }
    }

    protected dispatch(message: RpcMessage): void {
        if (message.routeType !== Route.peer) {
            // Only the broker writes the client route: a peer's frames reach us on the peer and source-dest routes.
            if (message.id === 0 && message.type === SwitchboardFrame.Drain && message.routeType === Route.client) return this.drain$.next();
            if (this.replies.has(message.id)) this.openStreams.noticed(message);
            return super.onMessage(message);
        }
        if (!this.peerKernel || message.getPeerId() !== this.servedPeerId) return;

        const source = connectionKey(message.getSource());
        if (message.type === SwitchboardFrame.CallerGone) return this.callers.drop(source);
        if (message.type === SwitchboardFrame.CallerIdentity) {
            // Only the broker writes this type (it refuses it from clients); the body is still checked, since a
            // broker can be compromised too.
            const identity = message.composite ? undefined : decodeCallerIdentity(message.getBuffer(), message.bodyOffset);
            if (!identity) return this.inbound.drop('invalid-caller-identity', `from connection ${source}`);
            const { context } = this.callers.get(source);
            context.peerId = identity.peerId;
            context.session = identity.session;
            context.typedErrors = !!identity.typedErrors;
            return;
        }
        const caller = this.callers.get(source);
        const connection = this.callers.connection(caller);
        this.serving.received(source, message);
        if (connection instanceof PeerKernelConnection && this.leanServing.serve(message, connection, answer => this.callers.answer(caller.context, answer))) return;
        connection.handleMessage(message);
    }

    /** A frame that failed in its handler: dropped, and a call of ours it answered fails instead of waiting forever. */
    protected frameFailed(message: RpcMessage, error: unknown): void {
        const detail = error instanceof Error ? error.message : String(error);
        this.inbound.drop('handler-error', detail);
        if (message.routeType === Route.peer) return;
        const subject = this.replies.get(message.id);
        if (subject) subject.disconnect(new MalformedMessage(`The reply to this call could not be read (${detail.slice(0, 200)}). The answering peer sent a malformed message.`));
    }

    /**
     * Calls an action of another peer whose types are loaded. A plain answer (Deepkit's mode `arbitrary`) takes the
     * lean path: Deepkit's frame, encoded with the action's compiled serializer, and one pending entry settling one
     * promise (PendingCall). Streams, collections and entities go through Deepkit's action client.
     */
    callAction(controller: RpcControllerState, method: string, args: unknown[], timeoutMs: number): Promise<unknown> {
        const types = controller.getState(method).types;
        const peerId = controller.peerId;
        if (!types || types.mode !== 'arbitrary' || !this.transporter.isConnected()) {
            return this.actionClient.action(controller, method, args, { timeout: timeoutMs });
        }
        return new Promise((resolve, reject) => {
            const id = this.messageId++;
            const call = new PendingCall(id, resultReader(types.resultSchema), resolve, reject, this.forgetReply, peerId ? `peer "${peerId}"` : 'the broker', timeoutMs);
            this.replies.set(id, call as unknown as RpcMessageSubject);
            const body = { controller: controller.controller, method, args };
            try {
                this.transporter.send(peerId
                    ? createRpcMessagePeer(id, RpcTypes.Action, this.getId(), peerId, body, types.callSchema)
                    : createRpcMessage(id, RpcTypes.Action, body, undefined, types.callSchema));
            } catch (error) {
                // Arguments that do not fit the action's parameter types fail here, as in Deepkit's action client.
                call.fail(error);
            }
        });
    }

    /**
     * A controller of the other side whose contract (`T`, an interface both sides share) is known here: no call asks
     * for its types (Deepkit's round trip per action and connection), every connection reuses the same compiled
     * serializers (calls/known-types.ts), and plain calls take the lean path. E.g. `knownController<BrokerApi>(BrokerApi)`.
     */
    knownController<T>(definition: string | ControllerDefinition<T>, options: { timeout?: number } = {}, contract?: ReceiveType<T>): RemoteController<T> {
        const state = primeActionTypes(new RpcControllerState(typeof definition === 'string' ? definition : definition.path), contract);
        return new Proxy({}, {
            get: (target, method) => {
                // Not a thenable: awaiting the proxy must not call an action named "then".
                if (method === 'then' || typeof method === 'symbol') return undefined;
                return (...args: unknown[]) => this.callAction(state, method, args, options.timeout ?? 0);
            },
        }) as RemoteController<T>;
    }

    protected readonly forgetReply = (id: number): void => {
        this.replies.delete(id);
    };

    override onClose(): void {
        this.openStreams.endAll(this.replies, new Disconnected('The connection to the broker closed; this stream ended. Subscribe again once the peer is connected.'));
        for (const subject of this.replies.values()) subject.disconnect(new Disconnected());
        this.replies.clear();
        this.callers.dropAll();
    }

    /**
     * One Action (`controller.method(...args)`) for many peers in one frame; the broker copies it to each target and
     * answers with each target's outcome. Arguments travel as plain BSON (each receiver validates them against its
     * action's parameter types, as for any call). Target i answers under message id `firstId + i`: the range is
     * reserved here, so its replies cannot be mistaken for another call's.
     */
    async multicast<R>(targets: readonly string[], controller: string, method: string, args: unknown[], options: { timeout: number, collectReplies?: boolean }): Promise<BroadcastResult<R>> {
        const firstId = this.messageId;
        this.messageId += targets.length;
        const replies = options.collectReplies ? targets.map((target, i) => awaitMulticastReply<R>(this.replies, firstId + i, target, options.timeout)) : [];
        try {
            const body = serializeBSONWithoutOptimiser({ controller, method, args });
            const request: MulticastRequest = { targets: [...targets], firstId, body };
            const answer = await this.sendMessage(SwitchboardFrame.Multicast, request, typeOf<MulticastRequest>(), { timeout: options.timeout })
                .waitNextMessage();
            if (answer.type === RpcTypes.Error) throw answer.getError();
            const result = summarize<R>(targets, answer.parseBody<MulticastResultBody>(typeOf<MulticastResultBody>()).outcomes);
            if (options.collectReplies) {
                result.replies = {};
                await Promise.all(targets.map(async (target, i) => {
                    if (handedOn(result.outcomes[target])) result.replies![target] = await replies[i].answer;
                    else replies[i].cancel();
                }));
            }
            return result;
        } catch (error) {
            for (const reply of replies) reply.cancel();
            throw error;
        }
    }

    public override sendMessage<T>(type: number, body?: T, schema?: ReceiveType<T>, options: SendOptions = {}): RpcMessageSubject {
        const resolvedSchema = schema ? resolveReceiveType(schema) : undefined;
        if (body && !schema) throw new RpcError('Body given, but not type');
        const id = this.messageId++;
        const connectionId = options.connectionId ?? this.transporter.connectionId;
        const peerId = options.peerId;
        const build = <B>(type: number, body?: B, schema?: ReceiveType<B>): RpcMessageDefinition => {
            const resolved = schema ? resolveReceiveType(schema) : undefined;
            return peerId
                ? createRpcMessagePeer(id, type, this.getId(), peerId, body, resolved)
                : createRpcMessage(id, type, body, undefined, resolved);
        };

        let timer: ReturnType<typeof setTimeout> | undefined;
        const subject = new RpcMessageSubject(
            // The continuation reuses the id and, for peer calls, the peer route: stock Deepkit sends it to the broker.
            (type, body, schema) => {
                if (connectionId === this.transporter.connectionId && this.transporter.isConnected()) this.transporter.send(build(type, body, schema));
            },
            () => {
                if (timer) clearTimeout(timer);
                this.replies.delete(id);
                this.openStreams.forget(id);
            },
        );
        if (options.timeout && options.timeout > 0) {
            const timeout = options.timeout;
            const target = peerId ? `peer "${peerId}"` : 'the broker';
            // The error is built only when the timer fires: capturing a stack for every message cost ~3% of a caller's CPU.
            timer = setTimeout(() => subject.disconnect(new Timeout(`No answer from ${target} within ${timeout} ms.`, timeout)), timeout);
            const next = subject.next.bind(subject);
            subject.next = (message: RpcMessage) => {
                if (timer) clearTimeout(timer);
                timer = undefined;
                subject.next = next;
                next(message);
            };
        }
        this.replies.set(id, subject);

        const send = () => this.transporter.send(build(type, body, resolvedSchema));
        if (options.dontWaitForConnection || this.transporter.isConnected()) {
            send();
        } else {
            this.connect().then(send, error => subject.disconnect(new Disconnected(`Could not connect to the broker: ${error instanceof Error ? error.message : error}`)));
        }
        return subject;
    }
}
