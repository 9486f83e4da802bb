import { rpc } from '@deepkit/rpc';
import { MinLength } from '@deepkit/type';
import { Observable, Subject } from 'rxjs';
import { filter, take, toArray } from 'rxjs/operators';
import { firstValueFrom } from 'rxjs';
import { AccessDenied, CircuitOpen, Disconnected, localOnly, NotFound, PeerOffline, PeerNotFound, Timeout, ValidationError } from '../../shared';
import { CallerContext, Peer } from '../../peer';
import { startSwitchboard } from '../../testing/test-kit';
import { collect, wentOffline } from '../helpers';

/** A user controller, as an app would expose it. */
@rpc.controller('app/clock')
class ClockController {
    static parked: (() => void)[] = [];
    static calls = 0;
    /** Fires after `parked` or `unsubscribed` changed. */
    static readonly changed$ = new Subject<void>();

    /** Resolves once `condition` (on the static lists) holds. */
    static async until(condition: () => boolean): Promise<void> {
        if (!condition()) await firstValueFrom(ClockController.changed$.pipe(filter(condition)));
    }

    constructor(private caller: CallerContext) {
    }

    @rpc.action()
    greet(name: string & MinLength<2>): string {
        ClockController.calls++;
        return `hello ${name}, from ${this.caller.peerId}`;
    }

    @rpc.action()
    async never(): Promise<string> {
        const late = new Promise<string>(resolve => ClockController.parked.push(() => resolve('late')));
        ClockController.changed$.next();
        return late;
    }

    /** Counts from `from` on, one value per tick, for as long as the caller stays subscribed. */
    @rpc.action()
    ticks(label: string): Observable<string> {
        const caller = this.caller.peerId;
        return new Observable(subscriber => {
            let n = 0;
            const timer = setInterval(() => subscriber.next(`${label}:${caller}:${n++}`), 5);
            return () => {
                clearInterval(timer);
                ClockController.unsubscribed.push(caller ?? '');
                ClockController.changed$.next();
            };
        });
    }

    static unsubscribed: string[] = [];

    @localOnly()
    reset(): void {
        ClockController.calls = 0;
    }
}

interface ClockApi {
    greet(name: string): string;
    never(): Promise<string>;
    ticks(label: string): Observable<string>;
    reset(): void;
}

describe('Peer: typed calls between peers', () => {
    it('three peers call each other; the receiver knows who calls', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob', 'carol'] });
        for (const id of ['alice', 'bob', 'carol']) kit.peer(id).expose(ClockController, 'app/clock');

        expect(await kit.peer('alice').to('bob').controller<ClockApi>('app/clock').greet('Bob')).toBe('hello Bob, from alice');
        expect(await kit.peer('bob').to('carol').controller<ClockApi>('app/clock').greet('Carol')).toBe('hello Carol, from bob');
        expect(await kit.peer('carol').to('alice').controller<ClockApi>('app/clock').greet('Alice')).toBe('hello Alice, from carol');
    });

    it('proxies are cached per target and path', async () => {
        await using kit = await startSwitchboard({ peers: ['alice'] });
        const alice = kit.peer('alice');
        expect(alice.to('bob')).toBe(alice.to('bob'));
        expect(alice.to('bob').controller('app/clock')).toBe(alice.to('bob').controller('app/clock'));
        // An awaited proxy is not mistaken for a promise.
        expect(await (alice.to('bob').controller('app/clock') as any).then).toBeUndefined();
    });

    it('invalid arguments: a typed ValidationError naming the field', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        kit.peer('bob').expose(ClockController, 'app/clock');
        const error = await kit.peer('alice').to('bob').controller<ClockApi>('app/clock').greet('x').catch(e => e);
        expect(error).toBeInstanceOf(ValidationError);
        expect(error.errors[0].path).toBe('name');
    });

    it('local-only actions are refused to remote callers', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        kit.peer('bob').expose(ClockController, 'app/clock');
        const error = await kit.peer('alice').to('bob').controller<ClockApi>('app/clock').reset().catch(e => e);
        expect(error).toBeInstanceOf(AccessDenied);
        expect(error.reason).toBe('local-only');
    });

    it('unknown target and unknown controller end with typed errors', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        await expect(kit.peer('alice').to('nobody').controller<ClockApi>('app/clock').greet('Hi')).rejects.toBeInstanceOf(PeerNotFound);
        const noController = await kit.peer('alice').to('bob').controller<ClockApi>('app/missing').greet('Hi').catch(e => e);
        expect(noController).toBeInstanceOf(NotFound);
        expect(noController.what).toBe('controller');
        kit.peer('bob').expose(ClockController, 'app/clock');
        const noAction = await kit.peer('alice').to('bob').controller<any>('app/clock').fly().catch((e: any) => e);
        expect(noAction).toBeInstanceOf(NotFound);
        expect(noAction.what).toBe('action');
    });
});

describe('Peer: calls always end', () => {
    it('a call times out with Timeout (default and per call)', async () => {
        await using kit = await startSwitchboard({ peers: [{ id: 'alice', callTimeoutMs: 200 }, 'bob'] });
        kit.peer('bob').expose(ClockController, 'app/clock');
        const clock = kit.peer('alice').to('bob').controller<ClockApi>('app/clock');
        const started = Date.now();
        await expect(clock.never()).rejects.toBeInstanceOf(Timeout);
        const perCall = await kit.peer('alice').to('bob').controller<ClockApi>('app/clock', { timeout: 50 }).never().catch(e => e);
        expect(perCall).toBeInstanceOf(Timeout);
        expect(perCall.timeoutMs).toBe(50);
        expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    });

    it('pending calls are rejected with Disconnected when the broker shuts down', async () => {
        const kit = await startSwitchboard({ peers: [{ id: 'alice', reconnect: false }, { id: 'bob', reconnect: false }] });
        kit.peer('bob').expose(ClockController, 'app/clock');
        ClockController.parked = [];
        const pending = kit.peer('alice').to('bob').controller<ClockApi>('app/clock').never();
        await ClockController.until(() => ClockController.parked.length === 1);
        await kit.broker.close();
        await expect(pending).rejects.toBeInstanceOf(Disconnected);
        await kit.close();
    });

    it('the circuit opens after consecutive failures and recovers after the cool-down', async () => {
        // The cool-down runs on alice's clock, which the test moves instead of waiting a minute.
        let now = Date.now();
        await using kit = await startSwitchboard({ peers: [{ id: 'alice', circuitBreaker: { failureThreshold: 3, coolDownMs: 60_000 }, clock: () => now }, 'bob'] });
        kit.peer('bob').expose(ClockController, 'app/clock');
        const alice = kit.peer('alice');
        const clock = alice.to('carol').controller<ClockApi>('app/clock');
        for (let i = 0; i < 3; i++) await expect(clock.greet('Carol')).rejects.toBeInstanceOf(PeerNotFound);
        const open = await clock.greet('Carol').catch(e => e);
        expect(open).toBeInstanceOf(CircuitOpen);
        expect(alice.circuit('carol').state).toBe('open');
        expect(await alice.to('bob').controller<ClockApi>('app/clock').greet('Bob').catch(e => e.constructor.name)).not.toBe('CircuitOpen');

        expect((open.retryAt as Date).getTime()).toBe(now + 60_000);
        now += 59_999;
        expect(await clock.greet('Carol').catch(e => e)).toBeInstanceOf(CircuitOpen);
        // Cooled down: one trial reaches the broker; it fails, so the circuit opens for another cool-down.
        now += 1;
        expect(await clock.greet('Carol').catch(e => e)).toBeInstanceOf(PeerNotFound);
        expect(await clock.greet('Carol').catch(e => e)).toBeInstanceOf(CircuitOpen);

        // bob is online but does not answer in time: its circuit opens too. (A peer coming online would reset it.)
        ClockController.parked = [];
        const slow = alice.to('bob').controller<ClockApi>('app/clock', { timeout: 100 });
        for (let i = 0; i < 3; i++) await expect(slow.never()).rejects.toBeInstanceOf(Timeout);
        await expect(slow.never()).rejects.toBeInstanceOf(CircuitOpen);
        now += 60_000;
        // The trial succeeds and closes the circuit.
        expect(await alice.to('bob').controller<ClockApi>('app/clock').greet('Bob')).toBe('hello Bob, from alice');
        expect(alice.circuit('bob').state).toBe('closed');
        for (const release of ClockController.parked.splice(0)) release();
    });
});

describe('Peer: streams across peers', () => {
    it('two callers stream from one peer at once, each gets exactly its own items; unsubscribe reaches the server', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob', 'server'] });
        kit.peer('server').expose(ClockController, 'app/clock');
        ClockController.unsubscribed = [];

        const [fromAlice, fromBob] = await Promise.all([
            kit.peer('alice').to('server').controller<ClockApi>('app/clock').ticks('a'),
            kit.peer('bob').to('server').controller<ClockApi>('app/clock').ticks('b'),
        ]);
        const [aliceItems, bobItems] = await Promise.all([
            firstValueFrom(fromAlice.pipe(take(5), toArray())),
            firstValueFrom(fromBob.pipe(take(5), toArray())),
        ]);
        expect(aliceItems).toEqual(['a:alice:0', 'a:alice:1', 'a:alice:2', 'a:alice:3', 'a:alice:4']);
        expect(bobItems).toEqual(['b:bob:0', 'b:bob:1', 'b:bob:2', 'b:bob:3', 'b:bob:4']);
        await ClockController.until(() => ClockController.unsubscribed.includes('alice') && ClockController.unsubscribed.includes('bob'));
    });
});

describe('Peer: resilience', () => {
    it('broker restarted on the same port: peers re-register on their own and calls work again', async () => {
        const kit = await startSwitchboard({ peers: [{ id: 'alice', reconnect: { initialDelayMs: 20, maxDelayMs: 200 } }, { id: 'bob', capabilities: ['clock'], sealing: false, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } }] });
        kit.peer('bob').expose(ClockController, 'app/clock');
        const alice = kit.peer('alice');
        const bob = kit.peer('bob');
        const port = kit.broker.port;
        const database = kit.broker.runtime.config.database;
        const disconnected = Promise.all([alice, bob].map(peer => collect(peer.state$, 1, state => state === 'disconnected')));
        await kit.broker.close();
        await disconnected;

        const { startBroker } = await import('../../server');
        const restarted = await startBroker({ port, database, logLevel: 'error' });
        try {
            await Promise.all([alice, bob].map(peer => collect(peer.state$, 1, state => state === 'registered')));
            expect(await alice.to('bob').controller<ClockApi>('app/clock').greet('again')).toBe('hello again, from alice');
            expect((await alice.broker.getPeer('bob')).capabilities).toEqual(['clock']);
        } finally {
            await alice.close();
            await bob.close();
            await restarted.close();
        }
    });

    it('idempotent actions are retried; others are not', async () => {
        // Retries every few milliseconds until bob is back, however long that takes on a busy machine: the call's
        // deadline is the bound, not a count of attempts (nor the circuit, which each PeerOffline would open).
        const retry = { attempts: 1_000_000, initialDelayMs: 10, maxDelayMs: 50 };
        await using kit = await startSwitchboard({ peers: [{ id: 'alice', retry, circuitBreaker: { failureThreshold: 1_000_000 } }] });
        const alice = kit.peer('alice');
        // Presence by interest: alice follows bob before he first comes (calling him would, too).
        await alice.watchPresence(['bob']);
        const offline = async () => {
            const bob = await kit.addPeer('bob');
            bob.expose(ClockController, 'app/clock');
            const gone = wentOffline(alice, 'bob');
            await bob.close();
            await gone;
        };
        await offline();
        const plain = alice.to('bob').controller<ClockApi>('app/clock');
        await expect(plain.greet('Bob')).rejects.toBeInstanceOf(PeerOffline);

        // bob comes back while alice is retrying: the idempotent call succeeds.
        const retried = alice.to('bob').controller<ClockApi>('app/clock', { idempotent: ['greet'], timeout: 20_000 }).greet('Bob');
        await kit.addPeer({ id: 'bob', expose: [[ClockController, 'app/clock']] });
        await expect(retried).resolves.toBe('hello Bob, from alice');
    });
});

describe('Peer: long-running processes', () => {
    /** A real garbage collection, as a long-running app eventually has. */
    async function collectGarbage(): Promise<void> {
        const v8 = await import('v8');
        const vm = await import('vm');
        v8.setFlagsFromString('--expose-gc');
        const gc = vm.runInNewContext('gc') as () => void;
        gc();
        // FinalizationRegistry callbacks run in a later task.
        await new Promise(resolve => setTimeout(resolve, 0));
        gc();
        await new Promise(resolve => setTimeout(resolve, 0));
    }

    it('presence keeps flowing after a garbage collection (Deepkit holds remote Observables only weakly)', async () => {
        await using kit = await startSwitchboard({ peers: ['alice'] });
        await kit.peer('alice').watchPresence(['bob']);
        await collectGarbage();
        const seen = collect(kit.peer('alice').presence$, 1, e => e.peerId === 'bob' && e.kind === 'online');
        await kit.addPeer('bob');
        await expect(seen).resolves.toHaveLength(1);
    });
});
