import { OfflineError } from '@deepkit/rpc';
import { ClusterUnavailable, Disconnected, Timeout } from '@switchboard/protocol';
import { withoutConnectPrefix } from '@switchboard/protocol/internal';
import { BackoffOptions, backoffDelay, sleep } from '../backoff';

/** What the rounds need of the session: one attempt, the connection's URL, and where problems go. */
export interface BrokerRoundsHost {
    /** The URL the next connection attempt goes to. */
    url: string;
    /** Connects and registers once; rejects with why not. */
    connectOnce(): Promise<void>;
    /** Closes a connection that answered but did not register us, so the next attempt starts clean. */
    dropConnection(): Promise<void>;
    /** A problem in the background (peer.errors$). */
    report(error: Error): void;
}

/**
 * Which broker of the list to try, and when: the first connection (rounds within `connectTimeoutMs`) and the
 * reconnects after a lost one (one backoff delay per round over the list, so a cluster with one live broker is found
 * within one round).
 */
export class BrokerRounds {
    constructor(
        readonly urls: readonly string[],
        protected backoff: BackoffOptions,
        protected connectTimeoutMs: number,
        protected signal: AbortSignal,
        protected host: BrokerRoundsHost,
    ) {
    }

    /** Points the next connection attempt at the next broker of the list (the same one when there is only one). */
    next(): void {
        this.host.url = this.urls[(this.urls.indexOf(this.host.url) + 1) % this.urls.length];
    }

    /**
     * Rounds over the brokers until one registers us. A broker that answered but could not register us yet (Timeout,
     * Disconnected, ClusterUnavailable: e.g. its cluster link just came back) gets another round after a backoff
     * delay, within `connectTimeoutMs`; a refusal (PeerIdTaken, AccessDenied, …) or no broker listening at all ends
     * at once.
     */
    async connectToAny(): Promise<void> {
        const deadline = Date.now() + this.connectTimeoutMs;
        for (let round = 0; ; round++) {
            const transient = await this.connectRound();
            if (!transient) return;
            const delay = backoffDelay(round, this.backoff);
            if (Date.now() + delay >= deadline || this.signal.aborted) throw transient;
            this.host.report(transient);
            await sleep(delay, this.signal);
            this.next();
        }
    }

    /**
     * One round over the brokers, from the current one on: undefined once registered, or the transient failure to
     * retry. A broker that cannot be reached (or drops us while we register) sends us to the next; a refusal ends
     * the round: every broker of a cluster would say the same.
     */
    protected async connectRound(): Promise<Error | undefined> {
        const failures: string[] = [];
        let transient: Error | undefined;
        for (let tried = 1; ; tried++) {
            try {
                await this.host.connectOnce();
                return undefined;
            } catch (error) {
                if (!unreachable(error)) throw error;
                if (!(error instanceof OfflineError)) transient = error;
                failures.push(`${this.host.url}: ${whyUnreachable(error)}`);
                await this.host.dropConnection();
                if (tried < this.urls.length) {
                    this.next();
                } else if (transient) {
                    return transient;
                } else if (this.urls.length === 1) {
                    throw new Disconnected(`Could not reach the broker at ${this.host.url}: ${whyUnreachable(error)}. Is it running, and is the URL right?`);
                } else {
                    throw new Disconnected(`Could not reach any of the ${failures.length} brokers: ${failures.join('; ')}.`);
                }
            }
        }
    }

    /**
     * Reconnects after a lost connection until registered or `stopped()`. `atOnce`: the first round starts without
     * its backoff delay (leaving a draining broker). `failed` runs after each attempt that did not register us.
     */
    async reconnect(stopped: () => boolean, atOnce: () => boolean, failed: () => void): Promise<void> {
        for (let round = 0; !stopped(); round++) {
            if (!(round === 0 && atOnce())) await sleep(backoffDelay(round, this.backoff), this.signal);
            for (let tried = 0; tried < this.urls.length; tried++) {
                if (stopped()) return;
                try {
                    await this.host.connectOnce();
                    return;
                } catch (error) {
                    this.host.report(error as Error);
                    // Connected but not registered (e.g. the ID is taken meanwhile): start over from a clean connection.
                    await this.host.dropConnection();
                    failed();
                    this.next();
                }
            }
        }
    }
}

/** The cause alone: Deepkit's client starts its message with "Could not connect: ", which ours says already. */
function whyUnreachable(error: Error): string {
    return withoutConnectPrefix(error.message);
}

/**
 * A broker that could not be reached, dropped the connection, stopped answering or could not reach its cluster while
 * we registered.
 */
function unreachable(error: unknown): error is Error {
    return error instanceof OfflineError || error instanceof Disconnected || error instanceof Timeout || error instanceof ClusterUnavailable;
}
