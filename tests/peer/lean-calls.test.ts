import { rpc, RpcClient, RpcWebSocketClientAdapter } from '@deepkit/rpc';
import { MinLength } from '@deepkit/type';
import { Observable } from 'rxjs';
import { take, toArray } from 'rxjs/operators';
import { firstValueFrom } from 'rxjs';
import WebSocket from 'ws';
import { AccessDenied, InternalError, localOnly, NotFound, Timeout, ValidationError } from '../../shared';
import { CallerContext } from '../../peer';
import { startSwitchboard } from '../../testing/test-kit';

/**
 * The lean call path takes a plain call once Deepkit has served its action once. What a caller relies on must be
 * the same on it: every test calls an action a first time (Deepkit's path) and then again (the lean path).
 */
@rpc.controller('app/lean')
class LeanController {
    static parked: (() => void)[] = [];

    constructor(private caller: CallerContext) {
    }

    @rpc.action()
    greet(name: string & MinLength<2>): string {
        return `hello ${name}, from ${this.caller.peerId}`;
    }

    @rpc.action()
    async later(value: number): Promise<{ doubled: number, at: Date }> {
        await Promise.resolve();
        return { doubled: value * 2, at: new Date(0) };
    }

    @rpc.action()
    echo(payload: Uint8Array): Uint8Array {
        return payload;
    }

    @rpc.action()
    missing(what: string): string {
        throw new NotFound(`There is no ${what}.`, 'action');
    }

    @rpc.action()
    broken(): string {
        throw new Error('a bug on the serving side');
    }

    @rpc.action()
    async never(): Promise<string> {
        return new Promise<string>(resolve => LeanController.parked.push(() => resolve('late')));
    }

    @rpc.action()
    count(to: number): Observable<number> {
        return new Observable(subscriber => {
            for (let n = 1; n <= to; n++) subscriber.next(n);
            subscriber.complete();
        });
    }

    @localOnly()
    reset(): void {
        // The app's own.
    }
}

/** The same path and action name as LeanController, other parameter and result types. */
@rpc.controller('app/lean')
class OtherLeanController {
    @rpc.action()
    greet(times: number): string {
        return Array.from({ length: times }, () => 'hi').join(' ');
    }
}

interface LeanApi {
    greet(name: string): Promise<string>;
    later(value: number): Promise<{ doubled: number, at: Date }>;
    echo(payload: Uint8Array): Promise<Uint8Array>;
    missing(what: string): Promise<string>;
    broken(): Promise<string>;
    never(): Promise<string>;
    count(to: number): Promise<Observable<number>>;
    reset(): Promise<void>;
}

describe('the lean call path keeps what callers rely on', () => {
    it('answers with the caller vouched for, dates and binaries decoded, on every call', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        kit.peer('bob').expose(LeanController, 'app/lean');
        const lean = kit.peer('alice').to('bob').controller<LeanApi>('app/lean');
        for (let i = 0; i < 3; i++) {
            expect(await lean.greet('you')).toBe('hello you, from alice');
            const later = await lean.later(21);
            expect(later.doubled).toBe(42);
            expect(later.at).toBeInstanceOf(Date);
            const echoed = await lean.echo(new Uint8Array([1, 2, 3]));
            expect(echoed).toBeInstanceOf(Uint8Array);
            expect([...echoed]).toEqual([1, 2, 3]);
        }
    });

    it('refuses invalid arguments with the same typed ValidationError, before and after a valid call', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        kit.peer('bob').expose(LeanController, 'app/lean');
        const lean = kit.peer('alice').to('bob').controller<LeanApi>('app/lean');
        const first = await lean.greet('x').catch(e => e);
        expect(await lean.greet('ok')).toBe('hello ok, from alice');
        const second = await lean.greet('x').catch(e => e);
        for (const error of [first, second]) {
            expect(error).toBeInstanceOf(ValidationError);
            expect(error.errors[0].path).toBe('name');
        }
        // A wrong type that does not even decode.
        const wrongType = await (lean.greet as (name: unknown) => Promise<string>)(42).catch(e => e);
        expect(wrongType).toBeInstanceOf(ValidationError);
    });

    it('passes typed errors on, hides the rest behind InternalError, and keeps local-only actions local', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        kit.peer('bob').expose(LeanController, 'app/lean');
        const lean = kit.peer('alice').to('bob').controller<LeanApi>('app/lean');
        const errors = console.error;
        console.error = () => undefined;
        try {
            for (let i = 0; i < 2; i++) {
                const missing = await lean.missing('spoon').catch(e => e);
                expect(missing).toBeInstanceOf(NotFound);
                expect(missing.message).toBe('There is no spoon.');
                expect(await lean.broken().catch(e => e)).toBeInstanceOf(InternalError);
                const refused = await lean.reset().catch(e => e);
                expect(refused).toBeInstanceOf(AccessDenied);
                expect(refused.reason).toBe('local-only');
            }
        } finally {
            console.error = errors;
        }
    });

    it('ends a call that is not answered in time with Timeout, and still serves streams', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        kit.peer('bob').expose(LeanController, 'app/lean');
        const lean = kit.peer('alice').to('bob').controller<LeanApi>('app/lean');
        const quick = kit.peer('alice').to('bob').controller<LeanApi>('app/lean', { timeout: 300 });
        expect(await firstValueFrom((await lean.count(3)).pipe(take(3), toArray()))).toEqual([1, 2, 3]);
        for (let i = 0; i < 2; i++) {
            const error = await quick.never().catch(e => e);
            expect(error).toBeInstanceOf(Timeout);
            expect(error.timeoutMs).toBe(300);
        }
        expect(await firstValueFrom((await lean.count(2)).pipe(take(2), toArray()))).toEqual([1, 2]);
        for (const release of LeanController.parked.splice(0)) release();
    });

    it('serves one controller class on many peers of a process, and another class under the same path by its own types', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob', 'carol', 'dave'] });
        kit.peer('bob').expose(LeanController, 'app/lean');
        kit.peer('carol').expose(LeanController, 'app/lean');
        kit.peer('dave').expose(OtherLeanController, 'app/lean');
        const alice = kit.peer('alice');
        for (let i = 0; i < 3; i++) {
            for (const target of ['bob', 'carol']) {
                const lean = alice.to(target).controller<LeanApi>('app/lean');
                expect(await lean.greet('you')).toBe('hello you, from alice');
                expect(await lean.greet('x').catch(e => e)).toBeInstanceOf(ValidationError);
            }
            const other = alice.to('dave').controller<{ greet(times: number): Promise<string> }>('app/lean');
            expect(await other.greet(2)).toBe('hi hi');
        }
    });

    it('serves a stock Deepkit client calling the same action again and again', async () => {
        await using kit = await startSwitchboard({ peers: ['bob'] });
        kit.peer('bob').expose(LeanController, 'app/lean');
        const stock = new RpcClient(new RpcWebSocketClientAdapter(kit.url, WebSocket as any));
        try {
            const lean = stock.peer('bob').controller<LeanApi>('app/lean');
            for (let i = 0; i < 3; i++) expect(await lean.greet('stock')).toBe('hello stock, from undefined');
            const error = await lean.greet('x').catch(e => e);
            expect(String(error.message ?? error)).toMatch(/name/);
        } finally {
            await stock.disconnect();
        }
    });
});
