/**
 * Scheduling "later in this turn of the event loop" the same way in Node and in browsers, which have no setImmediate.
 */

/**
 * After the I/O callbacks of this turn (Node's `setImmediate`), so that the frames of every message read in one poll
 * phase — each answered after a few promise hops — share one write. A microtask would run after the first hop. In
 * browsers, a microtask: the nearest there is that keeps a batch's latency at zero.
 */
export const afterIoCallbacks: (callback: () => void) => void =
    typeof setImmediate === 'function' ? callback => { setImmediate(callback); } : queueMicrotask;

/** After the current turn of the event loop, its promise jobs included (a timer of 0 ms in browsers). */
export function nextTurn(callback: () => void): void {
    if (typeof setImmediate === 'function') setImmediate(callback);
    else setTimeout(callback, 0);
}
