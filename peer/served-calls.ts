import { RpcMessage, RpcMessageDefinition, RpcTypes } from '@deepkit/rpc';
import { firstValueFrom, Subject } from 'rxjs';
import { filter } from 'rxjs/operators';

/** Answers after which a request from another peer is over (a stream's later items do not count: it is answered). */
const FINAL_ANSWERS: ReadonlySet<number> = new Set([
    RpcTypes.Ack, RpcTypes.Error, RpcTypes.ResponseActionSimple, RpcTypes.ResponseActionType, RpcTypes.ResponseActionReturnType,
    RpcTypes.ResponseActionObservable, RpcTypes.ResponseActionCollection, RpcTypes.ResponseEntity,
]);

/** Calls tracked at most; beyond, new ones are not waited for (a flood of calls that never end must not grow memory). */
const MAX_TRACKED = 100_000;

/**
 * The calls from other peers that this peer is serving right now (received, not answered yet), so that a peer leaving
 * a draining broker can first answer what it was asked.
 */
export class ServedCalls {
    protected calls = new Map<string, Set<number>>();
    protected count = 0;
    protected readonly changed$ = new Subject<number>();

    get size(): number {
        return this.count;
    }

    received(caller: string, message: RpcMessage): void {
        if (message.type !== RpcTypes.Action && message.type !== RpcTypes.ActionType) return;
        if (this.count >= MAX_TRACKED) return;
        let ids = this.calls.get(caller);
        if (!ids) this.calls.set(caller, ids = new Set());
        if (ids.has(message.id)) return;
        ids.add(message.id);
        this.count++;
    }

    answered(caller: string, answer: RpcMessageDefinition): void {
        if (!FINAL_ANSWERS.has(answer.type)) return;
        const ids = this.calls.get(caller);
        if (!ids?.delete(answer.id)) return;
        if (!ids.size) this.calls.delete(caller);
        this.count--;
        if (this.changed$.observed) this.changed$.next(this.count);
    }

    /** The caller is gone: its calls will never be answered to anyone. */
    forgetCaller(caller: string): void {
        const ids = this.calls.get(caller);
        if (!ids) return;
        this.calls.delete(caller);
        this.count -= ids.size;
        if (this.changed$.observed) this.changed$.next(this.count);
    }

    /** Resolves once no served call is waiting for its answer. */
    async idle(): Promise<void> {
        if (this.count === 0) return;
        await firstValueFrom(this.changed$.pipe(filter(count => count === 0)));
    }
}
