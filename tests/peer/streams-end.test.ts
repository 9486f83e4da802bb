import { rpc } from '@deepkit/rpc';
import { BehaviorSubject, firstValueFrom, Observable, Subject } from 'rxjs';
import { filter } from 'rxjs/operators';
import { BrokerProcess } from '../../bench/chaos/broker-process';
import { Peer } from '../../peer';
import { Disconnected } from '../../shared';
import { Resources } from '../helpers';
import { sees, usesCluster } from '../cluster/cluster-fixture';
import { describeWithNats } from '../cluster/nats-server';
import { peerInternals } from '../../peer/internal';

/** Streams that run until their caller unsubscribes (or is gone): counts how many run right now. */
@rpc.controller('test/ticker')
class TickerController {
    static running = 0;
    static readonly running$ = new Subject<number>();

    static until(count: number): Promise<unknown> {
        if (TickerController.running === count) return Promise.resolve();
        return firstValueFrom(TickerController.running$.pipe(filter(running => running === count)));
    }

    static changed(by: number): void {
        TickerController.running += by;
        TickerController.running$.next(TickerController.running);
    }

    @rpc.action()
    ticks(): Observable<number> {
        return new Observable(subscriber => {
            TickerController.changed(+1);
            let n = 0;
            const timer = setInterval(() => subscriber.next(n++), 10);
            return () => {
                clearInterval(timer);
                TickerController.changed(-1);
            };
        });
    }

    /** A Subject-typed stream: its producer notices the end when nobody observes it any more. */
    @rpc.action()
    level(): BehaviorSubject<number> {
        const subject = new BehaviorSubject(0);
        TickerController.changed(+1);
        let n = 0;
        const timer = setInterval(() => {
            if (subject.observed) return subject.next(n++);
            clearInterval(timer);
            TickerController.changed(-1);
        }, 10);
        return subject;
    }
}

interface TickerApi {
    ticks(): Observable<number>;
    level(): BehaviorSubject<number>;
}

/** Resolves with how the stream ended: its error, or 'completed'. */
function ending(stream: Observable<number>, keep: unknown[]): Promise<unknown> {
    // Deepkit holds a remote stream only weakly: the test keeps a reference until the end.
    keep.push(stream);
    return new Promise(resolve => stream.subscribe({ error: resolve, complete: () => resolve('completed') }));
}

const resources = new Resources();
afterEach(() => resources.closeAll());

describe('Peer: every stream ends when its caller is gone (one broker)', () => {
    it("the caller's connection drops: each of its open streams errors with Disconnected, and the server stops each one", async () => {
        const broker = await resources.broker();
        const server = resources.add(await Peer.connect({ url: broker.url, id: 'server' }), p => p.close());
        server.expose(TickerController, 'test/ticker');
        const alice = resources.add(await Peer.connect({ url: broker.url, id: 'alice', reconnect: false }), p => p.close());
        const ticker = alice.to('server').controller<TickerApi>('test/ticker');

        const keep: unknown[] = [];
        const endings = [
            ending(await ticker.ticks(), keep),
            ending(await ticker.ticks(), keep),
            ending(await ticker.level(), keep),
        ];
        await TickerController.until(3);

        await peerInternals(alice).client.disconnect();
        const ended = await Promise.all(endings);
        expect(ended.map(error => error instanceof Disconnected)).toEqual([true, true, true]);
        await TickerController.until(0);
        expect(keep).toHaveLength(3);
    });
});

describeWithNats('Peer: every stream ends when its caller is gone (a cluster)', () => {
    const fixture = usesCluster(resources);

    it("the caller's broker is killed: the serving peer on another broker stops each of the caller's streams", async () => {
        const death = { clusterHeartbeatMs: 100, clusterDeathTimeoutMs: 600 };
        const [live, doomed] = await Promise.all([
            fixture.cluster.broker(death),
            BrokerProcess.start(':memory:', fixture.cluster.flags(death)).then(broker => resources.add(broker, child => child.kill())),
        ]);
        const server = resources.add(await Peer.connect({ url: live.url, id: 'server' }), p => p.close());
        server.expose(TickerController, 'test/ticker');
        const alice = resources.add(await Peer.connect({ url: doomed.url, id: 'alice', reconnect: false }), p => p.close());
        await sees(live, 'alice');
        const ticker = alice.to('server').controller<TickerApi>('test/ticker');

        const keep: unknown[] = [];
        const endings = [ending(await ticker.ticks(), keep), ending(await ticker.ticks(), keep), ending(await ticker.level(), keep)];
        await TickerController.until(3);

        await doomed.kill();
        const ended = await Promise.all(endings);
        expect(ended.map(error => error instanceof Disconnected)).toEqual([true, true, true]);
        // Nobody is left to say the caller went: the live broker learns it from the dead broker's silence.
        await TickerController.until(0);
        expect(keep).toHaveLength(3);
    });
});
