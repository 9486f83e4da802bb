import { firstValueFrom, Subject } from 'rxjs';
import { filter } from 'rxjs/operators';

/**
 * A peer leaving a draining broker for another: counts the calls it has in flight, and holds new calls back while it
 * moves, so that none starts on the broker that is going and none fails for the move.
 */
export class BrokerMove {
    /** While a move is under way: resolves (never rejects) when it is over, whatever its outcome. */
    underWay?: Promise<void>;
    protected inFlight = 0;
    protected readonly settled$ = new Subject<void>();

    callStarted(): void {
        this.inFlight++;
    }

    callEnded(): void {
        this.inFlight--;
        if (this.inFlight === 0 && this.settled$.observed) this.settled$.next();
    }

    /**
     * Waits until our calls in flight and `alsoIdle` (the calls we serve) are over, at most `boundMs`, then runs
     * `leave`. A second notice while moving is ignored. Rejects with what `leave` threw.
     */
    run(boundMs: number, alsoIdle: Promise<void>[], leave: () => Promise<void>): Promise<void> {
        if (this.underWay) return this.underWay;
        const moving = (async () => {
            let timer: ReturnType<typeof setTimeout> | undefined;
            const bound = new Promise<void>(resolve => timer = setTimeout(resolve, boundMs));
            await Promise.race([Promise.all([this.idle(), ...alsoIdle]), bound]);
            clearTimeout(timer);
            await leave();
        })();
        this.underWay = moving.then(() => undefined, () => undefined).finally(() => this.underWay = undefined);
        return moving;
    }

    protected async idle(): Promise<void> {
        if (this.inFlight === 0) return;
        await firstValueFrom(this.settled$.pipe(filter(() => this.inFlight === 0)));
    }
}
