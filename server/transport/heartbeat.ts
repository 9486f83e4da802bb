import { WebSocket } from 'ws';

/** Unanswered pings a socket may have before it is called unresponsive (1: it must answer within two intervals). */
const ALLOWED_MISSED_PINGS = 1;

export interface Watched {
    /** Heard from (pong, ping or message) since the last beat. */
    heard: boolean;
    missed: number;
    onUnresponsive(): void;
}

/**
 * Pings every watched socket each interval, with one timer for all of them, and reports those that stopped
 * answering: a frozen process, or a half-open TCP connection that would otherwise hold its peer ID forever.
 * Any traffic counts as an answer, so a busy connection is never blamed for a pong stuck behind its data.
 */
export class Heartbeat {
    protected sockets = new Map<WebSocket, Watched>();
    protected timer?: ReturnType<typeof setInterval>;
    protected lastBeat = 0;

    constructor(protected intervalMs: number) {
    }

    start(): void {
        if (this.timer) return;
        this.lastBeat = performance.now();
        this.timer = setInterval(() => this.beat(), this.intervalMs);
        this.timer.unref();
    }

    stop(): void {
        clearInterval(this.timer);
        this.timer = undefined;
        this.sockets.clear();
    }

    /**
     * Watches `socket` until it closes; `onUnresponsive` is called at most once. The caller sets `heard` on each
     * message from its own 'message' listener (one listener fewer per socket).
     */
    watch(socket: WebSocket, onUnresponsive: () => void): Watched {
        const watched: Watched = { heard: true, missed: 0, onUnresponsive };
        const heard = () => watched.heard = true;
        socket.on('pong', heard);
        socket.on('ping', heard);
        socket.once('close', () => this.sockets.delete(socket));
        this.sockets.set(socket, watched);
        return watched;
    }

    protected beat(): void {
        const now = performance.now();
        // A broker whose own event loop stalled has not yet read the pongs waiting in its sockets: no verdict this time.
        const conclusive = now - this.lastBeat < this.intervalMs * 1.5;
        this.lastBeat = now;
        for (const [socket, watched] of this.sockets) {
            if (watched.heard) watched.missed = 0;
            else if (conclusive) watched.missed++;
            if (watched.missed > ALLOWED_MISSED_PINGS) {
                this.sockets.delete(socket);
                watched.onUnresponsive();
                continue;
            }
            watched.heard = false;
            if (socket.readyState === WebSocket.OPEN) socket.ping();
        }
    }
}
