import { PeerFeature } from '../../feature';
import { ReplicatedStateController } from './state-controller';
import { StateUpdateRecord } from './state-entities';
import { defaultStateLimits, StateLimits } from './replicated-map';
import { ReplicatedState } from './replicated-state';
import { ReplicatedStateApi } from '@switchboard/protocol';

export { ReplicatedState } from './replicated-state';
export type { OpenStateOptions, StateTraffic } from './replicated-state';
export { ReplicatedMap } from './replicated-map';
export type { MapChange, StateLimits } from './replicated-map';

/**
 * Replicated state as a peer feature: `Peer.connect({ url, id, features: { state: replicatedState() } })`, then
 * `await peer.features.state.open<T>(name, { members })`. `limits` are the defaults of every map (each `open` may
 * override them).
 */
export function replicatedState(limits: Partial<StateLimits> = {}): PeerFeature<ReplicatedState> {
    return {
        entities: [StateUpdateRecord],
        setup(context) {
            const state = new ReplicatedState(context, { ...defaultStateLimits, ...limits });
            return {
                api: state,
                providers: [{ provide: ReplicatedState, useValue: state }],
                controllers: [[ReplicatedStateController, ReplicatedStateApi]],
                started: () => state.started(),
                registered: () => state.registered(),
                peerOnline: peerId => state.peerOnline(peerId),
                close: () => state.close(),
            };
        },
    };
}
