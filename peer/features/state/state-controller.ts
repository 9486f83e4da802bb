import { rpc } from '@deepkit/rpc';
import { ReplicatedStateApi, StateDigest, StateName, StateSyncAnswer } from '@switchboard/protocol';
import { CallerContext } from '../../caller-context';
import { ReplicatedState } from './replicated-state';

/** Serves this peer's replicated maps to their members; the caller is the one the broker verified. */
@rpc.controller(ReplicatedStateApi)
export class ReplicatedStateController implements ReplicatedStateApi {
    constructor(protected state: ReplicatedState, protected caller: CallerContext) {
    }

    @rpc.action()
    async sync(name: StateName, digest: StateDigest): Promise<StateSyncAnswer> {
        return this.state.answerSync(this.caller.requirePeerId(), name, digest);
    }

    @rpc.action()
    async push(name: StateName, update: Uint8Array): Promise<void> {
        await this.state.acceptPush(this.caller.requirePeerId(), name, update);
    }
}
