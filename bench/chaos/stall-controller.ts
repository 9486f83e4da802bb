import { rpc } from '@deepkit/rpc';
import { Subject } from 'rxjs';
import { CallerContext } from '../../peer/caller-context';

/** Calls that reached a target peer: the harness injects its fault only once the call is really in flight there. */
export class Arrivals {
    readonly arrived$ = new Subject<{ tag: string, caller?: string }>();
}

export interface StallApi {
    echo(value: number): Promise<number>;
    /** Never answers: a target that hangs, or one that is killed or frozen with the call in flight. */
    stall(tag: string): Promise<string>;
}

export const STALL_PATH = 'chaos/stall';

/** Served by the targets of the reliability sections. */
@rpc.controller(STALL_PATH)
export class StallController implements StallApi {
    constructor(protected arrivals: Arrivals, protected caller: CallerContext) {
    }

    @rpc.action()
    async echo(value: number): Promise<number> {
        return value;
    }

    @rpc.action()
    stall(tag: string): Promise<string> {
        this.arrivals.arrived$.next({ tag, caller: this.caller.peerId });
        return new Promise(() => undefined);
    }
}
