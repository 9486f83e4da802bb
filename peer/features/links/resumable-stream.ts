import { Observable, Subscription } from 'rxjs';

/**
 * A stream that outlives the path carrying it. `first` is the stream as the link started it (from position
 * `start`); when it ends with an error `moves(error)` recognises (its link dropped), `reopen(position)` starts it again
 * elsewhere (through the broker) from the first item not delivered, and the subscriber goes on receiving, without a
 * gap, a duplicate or a change of order, as long as the action keeps its side of the contract (item n of a stream
 * started at p is item p + n).
 *
 * Opt-in per action (CallOptions.resumable), never by default: only the contract knows whether its items can be asked
 * for again from a position. Replaying from a buffer on the serving side instead would hold items in memory for a
 * subscriber that may never come back, and could not tell a fresh subscription from a resumed one.
 */
export function resumableStream<T>(
    first: Observable<T>,
    start: number,
    moves: (error: unknown) => boolean,
    reopen: (position: number) => Promise<Observable<T>>,
): Observable<T> {
    return new Observable<T>(subscriber => {
        let delivered = 0;
        let stopped = false;
        let current: Subscription | undefined;
        // Held for as long as the subscriber is: Deepkit keeps a remote action's Observable only weakly.
        let source = first;
        const follow = (stream: Observable<T>) => {
            source = stream;
            current = stream.subscribe({
                next: item => {
                    delivered++;
                    subscriber.next(item);
                },
                error: error => {
                    if (stopped) return;
                    if (!moves(error)) return subscriber.error(error);
                    reopen(start + delivered).then(
                        next => stopped ? undefined : follow(next),
                        failed => subscriber.error(failed),
                    );
                },
                complete: () => subscriber.complete(),
            });
        };
        follow(source);
        return () => {
            stopped = true;
            current?.unsubscribe();
        };
    });
}
