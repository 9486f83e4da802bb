import { createServer, Server } from 'net';
import { Disconnected } from '../../shared';
import { Peer } from '../../peer';

/** A port nothing listens on: taken from the system, then closed. */
async function closedPort(): Promise<number> {
    const server: Server = createServer();
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise(resolve => server.close(resolve));
    return port;
}

describe('the error of a peer that cannot reach its broker', () => {
    it('names the broker and the cause once', async () => {
        const url = `ws://127.0.0.1:${await closedPort()}`;
        const error = await Peer.connect({ url, id: 'alice', reconnect: false }).catch(caught => caught);
        expect(error).toBeInstanceOf(Disconnected);
        expect(error.message).toContain(url);
        expect(error.message).toContain('code 1006');
        expect(error.message.match(/could not (connect|reach)/gi)).toHaveLength(1);
    });

    it('with several brokers, names each with its cause', async () => {
        const urls = [`ws://127.0.0.1:${await closedPort()}`, `ws://127.0.0.1:${await closedPort()}`];
        const error = await Peer.connect({ url: urls, id: 'alice', reconnect: false }).catch(caught => caught);
        expect(error).toBeInstanceOf(Disconnected);
        for (const url of urls) expect(error.message).toContain(`${url}: the connection closed before it opened`);
        expect(error.message.match(/could not (connect|reach)/gi)).toHaveLength(1);
    });
});
