/** How often the clock ticks while the event loop is free. */
const TICK_MS = 50;
/** The most one gap between two readings may add: a blocked event loop advances the clock by this much at most. */
const MAX_STEP_MS = 2 * TICK_MS;

/**
 * Milliseconds of time in which the event loop was free to run. Wall time would count a stall (one huge frame, a long
 * GC, a CPU-starved host) as time a sender waited, and hand every sender a full budget at once afterwards; this
 * clock follows wall time while timers fire on time and moves at most MAX_STEP_MS across a gap in which they did not.
 * One clock for the process: every broker in it shares the loop.
 */
class LoopClock {
    protected elapsed = 0;
    protected lastWall = performance.now();
    protected timer?: ReturnType<typeof setInterval>;

    now(): number {
        if (!this.timer) {
            this.timer = setInterval(() => this.now(), TICK_MS);
            // A rate limit must never keep a process alive.
            this.timer.unref?.();
        }
        const wall = performance.now();
        this.elapsed += Math.min(wall - this.lastWall, MAX_STEP_MS);
        this.lastWall = wall;
        return this.elapsed;
    }
}

export const loopClock = new LoopClock();
