import { ControllerDefinition, RpcControllerState } from '@deepkit/rpc';
import { assertValidPeerId, ClusterUnavailable, Disconnected, PeerNotFound, PeerOffline, RateLimited, Timeout } from '@switchboard/protocol';
import { MAX_MULTICAST_TARGETS } from '@switchboard/protocol/internal';
import { BackoffOptions, backoffDelay, sleep } from '../backoff';
import { BroadcastOptions, BroadcastResult } from '../broadcast';
import { CallDeadline } from '../call-deadline';
import { CircuitBreaker, CircuitBreakerOptions, defaultCircuitBreaker } from '../circuit-breaker';
import { CallInvoker, CallOptions, RemotePeer } from '../remote-peer';
import { PeerSession } from '../session/peer-session';

/** What the calls need besides the session. */
export interface CallsOptions {
    retry: BackoffOptions & { attempts: number };
    circuitBreaker?: Partial<CircuitBreakerOptions>;
    clock?: () => number;
    /** A peer this one started to deal with (its presence is followed from now on). */
    contacted(peerId: string): void;
    /** A feature's better path to `peerId` than the broker (a live direct link), if any. */
    directPath(peerId: string): CallInvoker | undefined;
}

/**
 * Calls to other peers: a RemotePeer per target, calls through the broker with one deadline, retries of idempotent
 * actions and a circuit breaker per target, and multicast to many.
 */
export class PeerCalls implements CallInvoker {
    protected remotes = new Map<string, RemotePeer>();
    protected breakers = new Map<string, CircuitBreaker>();

    constructor(protected session: PeerSession, protected options: CallsOptions) {
    }

    /** Another peer; cached, so its controller proxies (and their types) are reused. */
    to(peerId: string, invoker: CallInvoker = this): RemotePeer {
        let remote = this.remotes.get(peerId);
        if (!remote) {
            this.remotes.set(peerId, remote = new RemotePeer(peerId, invoker));
            this.options.contacted(peerId);
        }
        return remote;
    }

    circuit(peerId: string): CircuitBreaker {
        let breaker = this.breakers.get(peerId);
        if (!breaker) this.breakers.set(peerId, breaker = new CircuitBreaker(peerId, { ...defaultCircuitBreaker, ...this.options.circuitBreaker }, this.options.clock));
        return breaker;
    }

    /** Failures counted before (our own outage among them) say nothing about the targets now: start afresh. */
    resetCircuits(): void {
        for (const breaker of this.breakers.values()) breaker.reset();
    }

    /** The broker says the peer is online: a fresh circuit. */
    online(peerId: string): void {
        this.breakers.get(peerId)?.reset();
    }

    directPath(peerId: string): CallInvoker | undefined {
        return this.options.directPath(peerId);
    }

    /** See Peer.broadcast. */
    async broadcast<R = unknown>(targets: readonly string[], controller: string | ControllerDefinition<any>, action: string, args: unknown[] = [], options: BroadcastOptions = {}): Promise<BroadcastResult<R>> {
        for (const target of targets) assertValidPeerId(target);
        // The broker sends one copy per distinct target; a repeated one would wait for a reply that never comes.
        targets = [...new Set(targets)];
        const path = typeof controller === 'string' ? controller : controller.path;
        const deadline = new CallDeadline(options.timeout ?? this.session.callTimeoutMs, `${targets.length} peers`);
        try {
            if (this.session.state !== 'registered') await deadline.within('registration', this.session.registeredOrStopped());
            const result: BroadcastResult<R> = { delivered: 0, forwarded: 0, failed: 0, outcomes: {}, replies: options.collectReplies ? {} : undefined };
            for (let start = 0; start < targets.length; start += MAX_MULTICAST_TARGETS) {
                const part = await deadline.during('action', this.session.client.multicast<R>(targets.slice(start, start + MAX_MULTICAST_TARGETS), path, action, args, {
                    timeout: deadline.remainingMs(), collectReplies: options.collectReplies,
                }));
                result.delivered += part.delivered;
                result.forwarded += part.forwarded;
                result.failed += part.failed;
                Object.assign(result.outcomes, part.outcomes);
                if (part.replies) Object.assign(result.replies!, part.replies);
            }
            return result;
        } finally {
            deadline.end();
        }
    }

    /**
     * A call through the broker. One deadline for the whole call (registration wait, type load, action, retries): it
     * ends within its timeout. The target's circuit counts only the target's failures; our own outage (not
     * registered, connection lost) is not held against it.
     */
    async invoke(peerId: string, controller: RpcControllerState, method: string, args: unknown[], options: CallOptions): Promise<any> {
        const deadline = new CallDeadline(options.timeout ?? this.session.callTimeoutMs, `peer "${peerId}"`);
        const retry = this.options.retry;
        const attempts = options.idempotent?.includes(method) ? retry.attempts : 1;
        const breaker = this.circuit(peerId);
        const transporter = this.session.client.transporter;
        try {
            for (let attempt = 0; ; attempt++) {
                const epoch = breaker.enter();
                const connectionId = transporter.connectionId;
                try {
                    const result = await this.attempt(deadline, controller, method, args);
                    breaker.success();
                    return result;
                } catch (caught) {
                    // A per-message timer given the remaining time: the caller's deadline passed.
                    const error = caught instanceof Timeout && !caught.stage && deadline.passed() ? deadline.timeout() : caught;
                    const sameConnection = connectionId === transporter.connectionId;
                    if (sameConnection && blamesTarget(error)) breaker.failure(epoch);
                    else breaker.neutral();
                    const retryable = error instanceof Timeout || error instanceof PeerOffline || error instanceof Disconnected || error instanceof RateLimited;
                    if (!retryable || attempt + 1 >= attempts || this.session.closing.signal.aborted) throw error;
                    const delay = backoffDelay(attempt, retry);
                    // A retry never extends the caller's deadline: one that could not even start fails now.
                    if (delay >= deadline.remainingMs()) throw error;
                    await sleep(delay, this.session.closing.signal);
                }
            }
        } finally {
            deadline.end();
        }
    }

    protected async attempt(deadline: CallDeadline, controller: RpcControllerState, method: string, args: unknown[]): Promise<any> {
        const session = this.session;
        // No call starts on a broker that is going: it waits for the peer on its next broker.
        if (session.move.underWay) await deadline.within('registration', session.move.underWay);
        if (session.state !== 'registered') await deadline.within('registration', session.registeredOrStopped());
        session.move.callStarted();
        try {
            const actionClient = session.client.actionClient;
            if (!controller.getState(method).types) {
                if (deadline.passed()) throw deadline.timeout('types');
                // Deepkit's action() would load the types with the same timeout as the action: each would get it whole.
                await deadline.within('types', actionClient.loadActionTypes(controller, method, { timeout: deadline.remainingMs() }));
            }
            if (deadline.passed()) throw deadline.timeout('action');
            return await deadline.during('action', session.client.callAction(controller, method, args, deadline.remainingMs()));
        } finally {
            session.move.callEnded();
        }
    }
}

/**
 * Failures that say something about the target: not our own outage (Timeout while not registered, Disconnected), nor
 * the cluster's (ClusterUnavailable: our broker could not reach the target's).
 */
function blamesTarget(error: unknown): boolean {
    if (error instanceof ClusterUnavailable) return false;
    if (error instanceof PeerOffline || error instanceof PeerNotFound) return true;
    return error instanceof Timeout && error.stage !== 'registration';
}
