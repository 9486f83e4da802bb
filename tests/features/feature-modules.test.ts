import { rpc } from '@deepkit/rpc';
import { entity, PrimaryKey } from '@deepkit/type';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { firstValueFrom, ReplaySubject } from 'rxjs';
import { filter } from 'rxjs/operators';
import { CallerContext, Peer } from '../../peer';
import { FeatureContext, PeerFeature } from '../../peer/feature';
import { Resources } from '../helpers';

@(entity.name('greeting').collection('greetings'))
class GreetingRecord {
    constructor(public id: string & PrimaryKey, public from: string) {
    }
}

class Greeter {
    readonly events$ = new ReplaySubject<string>();

    constructor(protected context: FeatureContext) {
    }

    async received(from: string): Promise<void> {
        await this.context.database.write(async session => session.add(new GreetingRecord(`${from}-${Date.now()}-${Math.random()}`, from)));
    }

    async count(): Promise<number> {
        return this.context.database.query(GreetingRecord).count();
    }

    hello(peerId: string): Promise<string> {
        return this.context.peer.to(peerId).controller<GreeterController>('test/greeter').greet();
    }
}

@rpc.controller('test/greeter')
class GreeterController {
    constructor(protected greeter: Greeter, protected caller: CallerContext) {
    }

    @rpc.action()
    async greet(): Promise<string> {
        await this.greeter.received(this.caller.requirePeerId());
        return `hello ${this.caller.peerId}`;
    }
}

function greeter(): PeerFeature<Greeter> {
    return {
        entities: [GreetingRecord],
        setup(context) {
            const api = new Greeter(context);
            return {
                api,
                providers: [{ provide: Greeter, useValue: api }],
                controllers: [[GreeterController, 'test/greeter']],
                started: () => api.events$.next('started'),
                registered: () => api.events$.next('registered'),
                peerOnline: peerId => api.events$.next(`online:${peerId}`),
                // Written while closing: the storage must still be open.
                close: () => api.received('closing'),
            };
        },
    };
}

describe('feature modules', () => {
    const resources = new Resources();
    let directory: string;
    beforeEach(() => directory = mkdtempSync(join(tmpdir(), 'features-')));
    afterEach(async () => {
        await resources.closeAll();
        rmSync(directory, { recursive: true, force: true });
    });

    it('gives each feature its API by name, its storage, its controllers and its lifecycle', async () => {
        const broker = await resources.broker();
        const storage = join(directory, 'alice.sqlite');
        const alice = resources.add(await Peer.connect({ url: broker.url, id: 'alice', storage, features: { greeter: greeter() } }), p => p.close());
        const seen = alice.features.greeter.events$;
        await firstValueFrom(seen.pipe(filter(event => event === 'registered')));
        // Presence follows the peers one deals with; alice has not dealt with bob yet, so she asks for him.
        await alice.watchPresence(['bob']);

        const bob = resources.add(await Peer.connect({ url: broker.url, id: 'bob', features: { greeter: greeter() } }), p => p.close());
        await firstValueFrom(seen.pipe(filter(event => event === 'online:bob')));
        expect(await bob.features.greeter.hello('alice')).toBe('hello bob');
        expect(await alice.features.greeter.count()).toBe(1);

        await alice.close();
        const again = resources.add(Peer.create({ url: broker.url, id: 'alice', storage, features: { greeter: greeter() } }), p => p.close());
        await again.start();
        // bob's greeting and the one written by close() survived the restart.
        expect(await again.features.greeter.count()).toBe(2);
    });

    it('leaves a peer without features as it was', async () => {
        const broker = await resources.broker();
        const plain = resources.add(await Peer.connect({ url: broker.url, id: 'plain' }), p => p.close());
        expect(Object.keys(plain.features)).toEqual([]);
    });
});
