/** Calls one caller connection has in flight to peers on one other broker. */
export interface CallerCalls {
    typedErrors: boolean;
    /** Request id → target peer ID. */
    ids: Map<number, string>;
}

/** Bounds, like the broker connection's own reply tracking: a caller that never hears back cannot grow them forever. */
const MAX_PER_CALLER = 10_000;
const MAX_CALLERS = 100_000;

/**
 * Requests routed to peers on other brokers and not answered yet, per destination broker. Core NATS delivers at most
 * once: when a broker dies or this broker loses NATS, its replies will never come, and these are the calls that must
 * end with a typed error at once instead of waiting for their timeouts.
 */
export class InFlightCalls {
    protected byBroker = new Map<string, Map<string, CallerCalls>>();
    protected callers = 0;

    add(brokerId: string, caller: string, typedErrors: boolean, id: number, target: string): void {
        let calls = this.byBroker.get(brokerId);
        if (!calls) this.byBroker.set(brokerId, calls = new Map());
        let mine = calls.get(caller);
        if (!mine) {
            if (this.callers >= MAX_CALLERS) return;
            calls.set(caller, mine = { typedErrors, ids: new Map() });
            this.callers++;
        }
        if (mine.ids.size >= MAX_PER_CALLER) mine.ids.delete(mine.ids.keys().next().value!);
        mine.ids.set(id, target);
    }

    /** A final reply came back. */
    settle(brokerId: string, caller: string, id: number): void {
        this.byBroker.get(brokerId)?.get(caller)?.ids.delete(id);
    }

    forgetCaller(caller: string): void {
        for (const calls of this.byBroker.values()) {
            if (calls.delete(caller)) this.callers--;
        }
    }

    /** Removes and returns the calls in flight to `brokerId`. */
    take(brokerId: string): Map<string, CallerCalls> {
        const calls = this.byBroker.get(brokerId) ?? new Map<string, CallerCalls>();
        this.byBroker.delete(brokerId);
        this.callers -= calls.size;
        return calls;
    }

    /** Removes and returns every call in flight. */
    takeAll(): Map<string, CallerCalls>[] {
        const all = [...this.byBroker.values()];
        this.byBroker.clear();
        this.callers = 0;
        return all;
    }
}
