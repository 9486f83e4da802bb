import { RpcClientTransporter, RpcError, RpcKernel, RpcKernelConnection, RpcMessageDefinition } from '@deepkit/rpc';
import { CallerContext } from './caller-context';
import { ServedCalls } from './served-calls';

/** What this peer keeps for one calling connection: who the broker says it is, and its kernel connection. */
export interface CallerState {
    context: CallerContext;
    connection?: RpcKernelConnection;
}

/** The client the calls arrive on: its kernel serves them, its broker connection carries the answers. */
export interface CallerHost {
    readonly peerKernel?: RpcKernel;
    readonly servedPeerId?: string;
    readonly transporter: Pick<RpcClientTransporter, 'send' | 'isConnected' | 'bufferedAmount'>;
}

/**
 * The connections calling this peer, each with a kernel connection of its own and the CallerContext the broker
 * vouched for (stock Deepkit: one shared connection, colliding message ids, no identity). At most `maxCallers` are
 * kept: beyond it the least recently active caller is forgotten, so a flood of distinct sources cannot grow memory
 * without bound.
 */
export class CallerConnections {
    /** Callers forgotten to stay within `maxCallers`. */
    evicted = 0;
    protected callers = new Map<string, CallerState>();

    constructor(protected host: CallerHost, protected serving: ServedCalls, protected maxCallers: number) {
    }

    get size(): number {
        return this.callers.size;
    }

    /**
     * The state of a calling connection, most recently active last. A caller forgotten here while it still calls
     * continues without identity (anonymous), which actions that need a caller ID refuse: the cap fails closed.
     */
    get(source: string): CallerState {
        let caller = this.callers.get(source);
        if (caller) {
            this.callers.delete(source);
        } else {
            caller = { context: new CallerContext(source) };
            if (this.callers.size >= this.maxCallers) {
                this.evicted++;
                this.drop(this.callers.keys().next().value!);
            }
        }
        this.callers.set(source, caller);
        return caller;
    }

    /** The caller's kernel connection, made on its first call. */
    connection(caller: CallerState): RpcKernelConnection {
        if (!caller.connection) caller.connection = this.connect(caller.context);
        return caller.connection;
    }

    answer(context: CallerContext, answer: RpcMessageDefinition): void {
        this.serving.answered(context.connectionId, answer);
        if (this.host.transporter.isConnected()) this.host.transporter.send(answer);
    }

    drop(source: string): void {
        const caller = this.callers.get(source);
        if (!caller) return;
        this.callers.delete(source);
        this.serving.forgetCaller(source);
        caller.connection?.close();
    }

    dropAll(): void {
        for (const source of [...this.callers.keys()]) this.drop(source);
    }

    protected connect(context: CallerContext): RpcKernelConnection {
        const kernel = this.host.peerKernel!;
        const injector = kernel.injector.createChildScope('rpc');
        injector.set(CallerContext, context);
        const connection = kernel.createConnection({
            // An answer finished after the broker connection closed has nowhere to go; throwing here would become an
            // unhandled rejection inside Deepkit's action handler.
            write: (answer: RpcMessageDefinition) => this.answer(context, answer),
            close: () => this.drop(context.connectionId),
            clientAddress: () => context.peerId ?? context.connectionId,
            bufferedAmount: () => this.host.transporter.bufferedAmount(),
        }, injector);
        if (!(connection instanceof RpcKernelConnection)) throw new RpcError('Expected an RpcKernelConnection from the peer kernel');
        // Frames addressed to our own ID must be served here, not redirected again.
        connection.myPeerId = this.host.servedPeerId;
        return connection;
    }
}
