import { RemoteController, rpc, RpcClient, RpcWebSocketClientAdapter } from '@deepkit/rpc';
import { MinLength } from '@deepkit/type';
import { firstValueFrom, Observable, Subject } from 'rxjs';
import { filter, take, toArray } from 'rxjs/operators';
import WebSocket from 'ws';
import { BrokerConfig, RunningBroker, startBroker } from '../server';
import { BrokerApi, PresenceEvent, Registration } from '../shared';
import { CallerContext } from '../peer';
import { PeerClient } from '../peer/internal';

/** Everything a test started, closed in reverse order after it. */
export class Resources {
    protected closers: (() => Promise<unknown> | unknown)[] = [];

    add<T>(resource: T, close: (resource: T) => Promise<unknown> | unknown): T {
        this.closers.push(() => close(resource));
        return resource;
    }

    async closeAll(): Promise<void> {
        // Calls parked by EchoController.hold would keep their callers waiting.
        for (const release of EchoController.held.splice(0)) release();
        for (const close of this.closers.reverse()) await close();
        this.closers = [];
    }

    async broker(config: Partial<BrokerConfig> = {}): Promise<RunningBroker> {
        const broker = await startBroker({ port: 0, database: ':memory:', logLevel: 'error', ...config });
        return this.add(broker, b => b.close());
    }

    /** A stock Deepkit client, as any Deepkit user would write it. */
    stockClient(url: string, token?: string): RpcClient {
        const client = new RpcClient(new RpcWebSocketClientAdapter(url, WebSocket as any));
        if (token) client.token.set(token);
        return this.add(client, c => c.disconnect());
    }

    peerClient(url: string, token?: string): PeerClient {
        const client = new PeerClient(new RpcWebSocketClientAdapter(url, WebSocket as any), PeerClient.createPeerKernel());
        if (token) client.token.set(token);
        return this.add(client, c => c.disconnect());
    }

    /** A peer that registers through the broker API and serves the test controllers. */
    async servingPeer(url: string, peerId: string, options: { token?: string, reclaimSecret?: string } = {}): Promise<{ client: PeerClient, registration: Registration }> {
        const client = this.peerClient(url, options.token);
        const registration = await api(client).register(peerId, options.reclaimSecret);
        client.servedPeerId = registration.peerId;
        client.peerKernel!.registerController(EchoController, EchoController.path);
        return { client, registration };
    }
}

export function api(client: RpcClient): RemoteController<BrokerApi> {
    return client.controller<BrokerApi>(BrokerApi.path);
}

export function echoOf(client: RpcClient, peerId: string, timeout?: number): RemoteController<EchoController> {
    return client.peer(peerId).controller<EchoController>(EchoController.path, { timeout });
}

/**
 * Resolves when `watcher` has seen `peerId` go offline on the broker's presence stream. A peer follows presence by
 * interest: the watcher starts following `peerId` here; a watch the broker answers after the peer left says offline.
 */
export function wentOffline(watcher: { presence$: Observable<PresenceEvent>, watchPresence?(peerIds: string[]): Promise<void> }, peerId: string): Promise<unknown> {
    const offline = collect(watcher.presence$, 1, event => event.peerId === peerId && event.kind === 'offline');
    void watcher.watchPresence?.([peerId]).catch(() => undefined);
    return offline;
}

/** Resolves with the first `count` values that match. */
export function collect<T>(source: Observable<T>, count: number, predicate: (value: T) => boolean = () => true): Promise<T[]> {
    return firstValueFrom(source.pipe(filter(predicate), take(count), toArray()));
}

/**
 * Resolves when `condition` holds: for state that announces no change (rows in a database, a counter). Where an event
 * exists, wait for the event instead. Checks every few milliseconds, not on every turn of the event loop: a check per
 * turn (often a query) starves the very work it waits for when the machine is busy. Fails after `timeoutMs`.
 */
export async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!await condition()) {
        if (Date.now() > deadline) throw new Error('condition not met in time');
        await new Promise(resolve => setTimeout(resolve, 10));
    }
}

/** Resolves once `count` calls of EchoController.hold are parked on the serving side. */
export async function heldCalls(count: number): Promise<void> {
    if (EchoController.held.length >= count) return;
    await firstValueFrom(EchoController.parked$.pipe(filter(parked => parked >= count)));
}

/** The controller every test peer serves. */
@rpc.controller('test/echo')
export class EchoController {
    static path = 'test/echo';
    /** Calls parked by `hold`, released by calling them (or never). */
    static held: (() => void)[] = [];
    /** How many calls are parked, after each call of `hold`. */
    static readonly parked$ = new Subject<number>();

    constructor(protected caller: CallerContext) {
    }

    @rpc.action()
    echo(text: string & MinLength<1>): string {
        return text;
    }

    @rpc.action()
    whoCalls(): { peerId?: string, session: string } {
        return { peerId: this.caller.peerId, session: this.caller.session };
    }

    /** Never answers on its own: for calls a disconnect must end. */
    @rpc.action()
    async hold(): Promise<string> {
        const released = new Promise<string>(resolve => EchoController.held.push(() => resolve('released')));
        EchoController.parked$.next(EchoController.held.length);
        return released;
    }

    @rpc.action()
    blob(size: number): Uint8Array {
        return new Uint8Array(size).fill(7);
    }
}

