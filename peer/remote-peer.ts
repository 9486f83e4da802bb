import { ControllerDefinition, RemoteController, RpcControllerState } from '@deepkit/rpc';
import { ChatApi, chatIdempotent, DiscoveryApi, discoveryIdempotent, RelayApi, relayIdempotent, FilesApi, filesIdempotent, CollabApi, collabIdempotent } from '@switchboard/protocol';

export interface CallOptions {
    /** Milliseconds until the call fails with Timeout; default: the peer's `callTimeoutMs`. */
    timeout?: number;
    /** Actions safe to run twice: retried with backoff after Timeout, PeerOffline, Disconnected or RateLimited. */
    idempotent?: readonly string[];
    /**
     * Stream actions that can start from a position, by the index of that argument (a number of items; unset = 0):
     * `{ ticks: 0 }`. Item n of a stream started at p must be item p + n. When the direct link carrying such a
     * stream drops, the SDK subscribes again through the broker from the first item not delivered, so the stream
     * goes on with every item once and in order (see the links feature).
     */
    resumable?: Readonly<Record<string, number>>;
}

/** What a RemotePeer needs from its Peer to make a call. */
export interface CallInvoker {
    invoke(peerId: string, controller: RpcControllerState, method: string, args: unknown[], options: CallOptions): Promise<any>;
    /** A better path to `peerId` than the broker (a live direct link) when there is one: it takes the call. */
    directPath?(peerId: string): CallInvoker | undefined;
}

/**
 * Another peer, as seen from this one. Controller proxies are cached per path and options: Deepkit caches action
 * types per controller state, so a fresh proxy per call would cost a type round trip each time.
 */
export class RemotePeer {
    protected proxies = new Map<string, unknown>();

    constructor(readonly id: string, protected invoker: CallInvoker) {
    }

    /** The peer's chat controller (raw remote API; `peer.chat` adds delivery tracking and the outbox). */
    get chat(): RemoteController<ChatApi> {
        return this.controller<ChatApi>(ChatApi, { idempotent: chatIdempotent });
    }

    get discovery(): RemoteController<DiscoveryApi> {
        return this.controller<DiscoveryApi>(DiscoveryApi, { idempotent: discoveryIdempotent });
    }

    get relay(): RemoteController<RelayApi> {
        return this.controller<RelayApi>(RelayApi, { idempotent: relayIdempotent });
    }

    get files(): RemoteController<FilesApi> {
        return this.controller<FilesApi>(FilesApi, { idempotent: filesIdempotent });
    }

    get collab(): RemoteController<CollabApi> {
        return this.controller<CollabApi>(CollabApi, { idempotent: collabIdempotent });
    }

    controller<T>(pathOrDefinition: string | ControllerDefinition<T>, options: CallOptions = {}): RemoteController<T> {
        const path = typeof pathOrDefinition === 'string' ? pathOrDefinition : pathOrDefinition.path;
        const key = path + '\n' + (options.timeout ?? '') + '\n' + (options.idempotent ?? []).join(',') + (options.resumable ? '\n' + JSON.stringify(options.resumable) : '');
        let proxy = this.proxies.get(key) as RemoteController<T> | undefined;
        if (!proxy) {
            const state = new RpcControllerState(path);
            state.peerId = this.id;
            proxy = new Proxy({}, {
                get: (target, property) => {
                    // Not a thenable: `await peer.to('bob').controller(…)` must not call an action named "then".
                    if (property === 'then' || typeof property === 'symbol') return undefined;
                    return (...args: unknown[]) => (this.invoker.directPath?.(this.id) ?? this.invoker).invoke(this.id, state, property, args, options);
                },
            }) as RemoteController<T>;
            this.proxies.set(key, proxy);
        }
        return proxy;
    }
}
