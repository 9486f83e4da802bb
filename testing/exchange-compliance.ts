import { firstValueFrom, Subscription } from 'rxjs';
import { filter, take, toArray } from 'rxjs/operators';
import { PeerIdTaken } from '@switchboard/protocol';
import { ExchangeEndpoint, ExchangePresence, FrameOrigin, PeerExchange } from '@switchboard/broker';

/** An endpoint that records what the exchange hands it, standing for one broker connection. */
export class RecordingEndpoint implements ExchangeEndpoint {
    requests: { frame: Uint8Array, origin: FrameOrigin }[] = [];
    replies: Uint8Array[] = [];
    replacedIds: string[] = [];

    constructor(readonly connectionId: string) {
    }

    deliverRequest(frame: Uint8Array, origin: FrameOrigin): boolean {
        this.requests.push({ frame, origin });
        return true;
    }

    deliverReply(frame: Uint8Array): void {
        this.replies.push(frame);
    }

    replaced(peerId: string): void {
        this.replacedIds.push(peerId);
    }
}

export interface ExchangeHarness {
    setup(): Promise<PeerExchange>;
    teardown(exchange: PeerExchange): Promise<void>;
    /**
     * Resolves when everything the exchange was asked so far has happened, presence included. An exchange whose
     * presence comes back asynchronously (a cluster's directory watch) waits here; a synchronous one need not set it.
     */
    settle?(exchange: PeerExchange): Promise<void>;
}

const frame = (byte: number) => new Uint8Array([byte, byte, byte]);
const origin = (connectionId: string, peerId?: string): FrameOrigin => ({ connectionId, peerId, session: 'anonymous' });

/**
 * What every PeerExchange must do. An implementation runs it with a few lines:
 * `describeExchangeCompliance('in-process', { setup: async () => new InProcessPeerExchange(), teardown: … })`.
 */
export function describeExchangeCompliance(name: string, harness: ExchangeHarness): void {
    describe(`PeerExchange compliance: ${name}`, () => {
        let exchange: PeerExchange;
        let subscription: Subscription | undefined;

        beforeEach(async () => {
            exchange = await harness.setup();
            await exchange.start();
        });

        afterEach(async () => {
            subscription?.unsubscribe();
            await harness.teardown(exchange);
        });

        it('start and stop are safe to call twice, and stop before start', async () => {
            await exchange.start();
            await exchange.stop();
            await exchange.stop();
            const fresh = await harness.setup();
            await fresh.stop();
            await harness.teardown(fresh);
        });

        it('routes a frame to the connection registered under the peer ID, with the origin', async () => {
            const bob = new RecordingEndpoint('c-bob');
            exchange.attach(bob);
            await exchange.register('bob', 'c-bob');
            expect(exchange.route('bob', frame(1), origin('c-alice', 'alice'))).toBe(true);
            expect(bob.requests).toHaveLength(1);
            expect(bob.requests[0].frame).toEqual(frame(1));
            expect(bob.requests[0].origin).toEqual(origin('c-alice', 'alice'));
        });

        it('routeParts (where implemented) delivers header and body as one frame, in order with route, and says when the ID is unknown', async () => {
            if (!exchange.routeParts) return;
            const bob = new RecordingEndpoint('c-bob');
            exchange.attach(bob);
            await exchange.register('bob', 'c-bob');
            exchange.route('bob', frame(1), origin('c-alice'));
            expect(exchange.routeParts('bob', frame(2), frame(3), origin('c-alice'))).toBe(true);
            expect(exchange.routeParts('nobody', frame(2), frame(3), origin('c-alice'))).toBe(false);
            expect(bob.requests.map(r => [...r.frame])).toEqual([[1, 1, 1], [2, 2, 2, 3, 3, 3]]);
        });

        it('keeps the order of frames for one peer', async () => {
            const bob = new RecordingEndpoint('c-bob');
            exchange.attach(bob);
            await exchange.register('bob', 'c-bob');
            for (let i = 0; i < 50; i++) exchange.route('bob', frame(i), origin('c-alice'));
            expect(bob.requests.map(r => r.frame[0])).toEqual([...Array(50).keys()]);
        });

        it('says at once when a peer ID is unknown', () => {
            expect(exchange.route('nobody', frame(1), origin('c-alice'))).toBe(false);
            expect(exchange.lookup('nobody')).toBeUndefined();
        });

        it('routes replies by connection id, and says when the connection is gone', () => {
            const alice = new RecordingEndpoint('c-alice');
            exchange.attach(alice);
            expect(exchange.reply('c-alice', frame(7))).toBe(true);
            expect(alice.replies).toEqual([frame(7)]);
            exchange.detach('c-alice');
            expect(exchange.reply('c-alice', frame(8))).toBe(false);
        });

        it('refuses a live ID to another connection with PeerIdTaken', async () => {
            exchange.attach(new RecordingEndpoint('c-1'));
            exchange.attach(new RecordingEndpoint('c-2'));
            await exchange.register('bob', 'c-1');
            await expect(exchange.register('bob', 'c-2')).rejects.toBeInstanceOf(PeerIdTaken);
            expect(exchange.lookup('bob')?.connectionId).toBe('c-1');
        });

        it('registering the same ID on the same connection again is harmless', async () => {
            exchange.attach(new RecordingEndpoint('c-1'));
            await exchange.register('bob', 'c-1');
            await exchange.register('bob', 'c-1');
            expect(exchange.lookup('bob')?.connectionId).toBe('c-1');
        });

        it('releases the ID when its connection detaches, so it can be registered again at once', async () => {
            exchange.attach(new RecordingEndpoint('c-1'));
            await exchange.register('bob', 'c-1');
            exchange.detach('c-1');
            expect(exchange.lookup('bob')).toBeUndefined();
            expect(exchange.route('bob', frame(1), origin('c-x'))).toBe(false);
            const next = new RecordingEndpoint('c-2');
            exchange.attach(next);
            await exchange.register('bob', 'c-2');
            expect(exchange.route('bob', frame(2), origin('c-x'))).toBe(true);
            expect(next.requests).toHaveLength(1);
        });

        it('deregister releases the ID; a deregister from another connection does not', async () => {
            exchange.attach(new RecordingEndpoint('c-1'));
            await exchange.register('bob', 'c-1');
            await exchange.deregister('bob', 'c-2');
            expect(exchange.lookup('bob')?.connectionId).toBe('c-1');
            await exchange.deregister('bob', 'c-1');
            expect(exchange.lookup('bob')).toBeUndefined();
        });

        it('takeover moves a live ID and tells the replaced endpoint', async () => {
            const stale = new RecordingEndpoint('c-1');
            exchange.attach(stale);
            exchange.attach(new RecordingEndpoint('c-2'));
            await exchange.register('bob', 'c-1');
            await exchange.register('bob', 'c-2', { takeover: true });
            expect(stale.replacedIds).toEqual(['bob']);
            expect(exchange.lookup('bob')?.connectionId).toBe('c-2');
        });

        it('keeps the owner of a live ID for ownerOf, and forgets it when the ID goes offline', async () => {
            exchange.attach(new RecordingEndpoint('c-1'));
            await exchange.register('bob', 'c-1', { owner: { session: 'bob-token', reclaimSecretHash: 'hash-1' } });
            expect(exchange.ownerOf('bob')).toEqual({ session: 'bob-token', reclaimSecretHash: 'hash-1' });
            exchange.detach('c-1');
            expect(exchange.ownerOf('bob')).toBeUndefined();
        });

        it('holds the ID of a lost connection (detach) for its owner within graceMs: anyone else gets PeerIdTaken, the owner gets it back', async () => {
            const owner = { session: 'anonymous', reclaimSecretHash: 'hash-1' };
            exchange.attach(new RecordingEndpoint('c-1'));
            exchange.attach(new RecordingEndpoint('c-thief'));
            exchange.attach(new RecordingEndpoint('c-2'));
            await exchange.register('bob', 'c-1', { owner, graceMs: 60_000 });
            exchange.detach('c-1');
            expect(exchange.lookup('bob')).toBeUndefined();
            expect(exchange.route('bob', frame(1), origin('c-x'))).toBe(false);
            expect(exchange.ownerOf('bob')).toEqual(owner);
            expect(exchange.heldUntil('bob')!.getTime()).toBeGreaterThan(Date.now());

            const refused = await exchange.register('bob', 'c-thief', { owner: { session: 'anonymous', reclaimSecretHash: 'other' }, graceMs: 60_000 }).catch(error => error);
            expect(refused).toBeInstanceOf(PeerIdTaken);
            expect((refused as PeerIdTaken).heldUntil).toBeInstanceOf(Date);
            expect(exchange.lookup('bob')).toBeUndefined();

            await exchange.register('bob', 'c-2', { takeover: true, owner, graceMs: 60_000 });
            expect(exchange.lookup('bob')?.connectionId).toBe('c-2');
            expect(exchange.heldUntil('bob')).toBeUndefined();
        });

        it('a clean deregister releases the ID at once, with no hold', async () => {
            exchange.attach(new RecordingEndpoint('c-1'));
            exchange.attach(new RecordingEndpoint('c-2'));
            await exchange.register('bob', 'c-1', { owner: { session: 'anonymous', reclaimSecretHash: 'hash-1' }, graceMs: 60_000 });
            await exchange.deregister('bob', 'c-1');
            expect(exchange.heldUntil('bob')).toBeUndefined();
            await exchange.register('bob', 'c-2', { owner: { session: 'anonymous', reclaimSecretHash: 'hash-2' }, graceMs: 60_000 });
            expect(exchange.lookup('bob')?.connectionId).toBe('c-2');
        });

        it('lists itself first among its brokers, with the peers it holds', async () => {
            exchange.attach(new RecordingEndpoint('c-1'));
            await exchange.register('bob', 'c-1');
            expect(exchange.brokers()[0]).toMatchObject({ brokerId: exchange.brokerId, alive: true, peers: 1 });
        });

        it('reports presence in order: online, capabilities, offline', async () => {
            const events = firstValueFrom(exchange.presence.pipe(filter(e => e.peerId === 'bob'), take(3), toArray()));
            exchange.attach(new RecordingEndpoint('c-1'));
            await exchange.register('bob', 'c-1');
            exchange.announce('bob', ['chat']);
            exchange.detach('c-1');
            expect((await events).map((e: ExchangePresence) => [e.kind, e.capabilities])).toEqual([
                ['online', []], ['capabilities', ['chat']], ['offline', ['chat']],
            ]);
        });

        it('forgets the capabilities of an ID that went offline; it comes back with none until it announces', async () => {
            const events: ExchangePresence[] = [];
            subscription = exchange.presence.pipe(filter(e => e.peerId === 'bob')).subscribe(event => events.push(event));
            exchange.attach(new RecordingEndpoint('c-1'));
            await exchange.register('bob', 'c-1');
            exchange.announce('bob', ['chat']);
            exchange.detach('c-1');
            exchange.announce('bob', ['late']);
            exchange.attach(new RecordingEndpoint('c-2'));
            await exchange.register('bob', 'c-2');
            await harness.settle?.(exchange);
            expect(events.map(e => [e.kind, e.capabilities])).toEqual([
                ['online', []], ['capabilities', ['chat']], ['offline', ['chat']], ['online', []],
            ]);
        });

        it('emits no presence after stop', async () => {
            const seen: ExchangePresence[] = [];
            subscription = exchange.presence.subscribe(event => seen.push(event));
            exchange.attach(new RecordingEndpoint('c-1'));
            await exchange.register('bob', 'c-1');
            await exchange.stop();
            const count = seen.length;
            exchange.detach('c-1');
            exchange.announce('bob', ['x']);
            expect(seen.length).toBe(count);
        });
    });
}
