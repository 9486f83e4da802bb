import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { Peer } from '../../peer';
import { startSwitchboard } from '../../testing/test-kit';
import { TcpProxy } from './tcp-proxy';

describe('chat while this peer is not connected', () => {
    it('a message sent while the broker is unreachable is queued at once, and delivered when it is back', async () => {
        await using kit = await startSwitchboard({ peers: ['bob'] });
        const proxy = await TcpProxy.start(kit.broker.port);
        await using cleanup = { [Symbol.asyncDispose]: () => proxy.close() };
        // A call timeout far beyond the test's: waiting for the first attempt would not end before the test does.
        const alice = await Peer.connect({ url: proxy.url, id: 'alice', callTimeoutMs: 600_000, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
        await using closing = { [Symbol.asyncDispose]: () => alice.close() };
        const down = firstValueFrom(alice.state$.pipe(filter(state => state !== 'registered')));
        proxy.cut();
        await down;

        const sent = await alice.chat.send('bob', 'typed while the broker is down');
        expect(sent.status).toBe('queued');
        const arrived = firstValueFrom(kit.peer('bob').chat.updates$.pipe(filter(entry => entry.direction === 'in')));
        const delivered = firstValueFrom(alice.chat.updates$.pipe(filter(entry => entry.id === sent.id && entry.status === 'delivered')));
        proxy.accept();
        expect(await arrived).toMatchObject({ id: sent.id, text: 'typed while the broker is down' });
        await delivered;
    });
});
