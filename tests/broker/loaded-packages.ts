import { startBroker } from '../../server/app';

/**
 * A program for tests/broker/lazy-loading.test.ts: starts a broker as embedded (`startBroker`, no NATS URL), prints
 * which of the packages loaded only on demand are in Node's module cache, scrapes `/metrics`, and prints them again.
 */
function loaded(): { nats: boolean, promClient: boolean } {
    const paths = Object.keys(require.cache);
    return { nats: paths.some(path => path.includes('/@nats-io/')), promClient: paths.some(path => path.includes('/prom-client/')) };
}

void (async () => {
    const broker = await startBroker({ port: 0, database: ':memory:', logLevel: 'error' });
    process.stdout.write(`started ${JSON.stringify(loaded())}\n`);
    const response = await fetch(`${broker.httpUrl}/metrics`);
    await response.text();
    process.stdout.write(`scraped ${response.status} ${JSON.stringify(loaded())}\n`);
    await broker.close();
})();
