/** Pings in a row that may go unanswered before the connection is called dead (2: it must answer within 2–3 intervals). */
const ALLOWED_MISSED_PINGS = 1;

/**
 * Notices a broker connection that stopped carrying anything: a frozen broker, or a half-open TCP connection (a
 * NAT or proxy that dropped it silently), which would otherwise look connected forever while every call times out.
 * Each interval it pings; when two pings in a row get no answer, and nothing else arrived either, it reports the
 * connection unresponsive. Any traffic counts as an answer, so a pong stuck behind a large transfer is not blamed.
 * App-level pings, not WebSocket ones: browsers cannot send those.
 */
export class ConnectionWatchdog {
    protected timer?: ReturnType<typeof setInterval>;
    protected lastBeat = 0;
    protected lastHeard = 0;
    protected pingOutstanding = false;
    protected missed = 0;

    /**
     * @param heard a counter of messages received on the connection; it changes whenever anything arrives.
     * @param ping sends one ping; its answer shows up in `heard`.
     * @param onUnresponsive called at most once per `start()`.
     */
    constructor(
        readonly intervalMs: number,
        protected heard: () => number,
        protected ping: () => void,
        protected onUnresponsive: () => void,
    ) {
    }

    /** Starts watching a fresh connection. */
    start(): void {
        this.stop();
        this.lastBeat = performance.now();
        this.lastHeard = this.heard();
        this.pingOutstanding = false;
        this.missed = 0;
        this.timer = setInterval(() => this.beat(), this.intervalMs);
        // A watchdog must not keep a process alive that has nothing else to do.
        this.timer.unref?.();
    }

    stop(): void {
        clearInterval(this.timer);
        this.timer = undefined;
    }

    protected beat(): void {
        const now = performance.now();
        // When our own event loop stalled, the answers may be waiting unread in the socket: no verdict this time.
        const conclusive = now - this.lastBeat < this.intervalMs * 1.5;
        this.lastBeat = now;
        const heard = this.heard();
        if (heard !== this.lastHeard) {
            this.lastHeard = heard;
            this.missed = 0;
        } else if (this.pingOutstanding && conclusive) {
            this.missed++;
        }
        if (this.missed > ALLOWED_MISSED_PINGS) {
            this.stop();
            return this.onUnresponsive();
        }
        this.pingOutstanding = true;
        this.ping();
    }
}
