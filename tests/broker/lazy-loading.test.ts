import { api, echoOf, Resources } from '../helpers';
import { runProgram } from '../processes';

/**
 * A broker loads what it needs when it needs it (issue 23): one without a NATS URL never loads the NATS client, and
 * prom-client loads on the first scrape of `/metrics` — while the counters behind it count from the start.
 */
describe('what a broker loads', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('a single broker loads no NATS client, and prom-client only when /metrics is first scraped', async () => {
        // In a process of its own: jest's module registry is not Node's module cache.
        const run = runProgram('tests/broker/loaded-packages.ts', []);
        const started = await run.waitFor(/started (\{.*\})/);
        expect(JSON.parse(started[1])).toEqual({ nats: false, promClient: false });
        const scraped = await run.waitFor(/scraped (\d+) (\{.*\})/);
        expect(scraped[1]).toBe('200');
        expect(JSON.parse(scraped[2])).toEqual({ nats: false, promClient: true });
        expect(await run.exit).toBe(0);
    }, 60_000);

    it('/metrics: the call latency histogram counts the calls routed before the first scrape', async () => {
        const broker = await resources.broker();
        await resources.servingPeer(broker.url, 'bob');
        const caller = resources.peerClient(broker.url);
        await api(caller).register('alice');
        for (let call = 0; call < 3; call++) expect(await echoOf(caller, 'bob').echo('hi')).toBe('hi');

        const text = await (await fetch(`${broker.httpUrl}/metrics`)).text();
        expect(text).toContain('# TYPE switchboard_call_latency_seconds histogram');
        const count = Number(/^switchboard_call_latency_seconds_count (\d+)$/m.exec(text)![1]);
        expect(count).toBeGreaterThanOrEqual(3);
        expect(text).toMatch(new RegExp(`^switchboard_call_latency_seconds_bucket\\{le="\\+Inf"\\} ${count}$`, 'm'));
        const buckets = [...text.matchAll(/^switchboard_call_latency_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map(match => Number(match[2]));
        expect(buckets).toHaveLength(14);
        expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
        expect(Number(/^switchboard_call_latency_seconds_sum (\S+)$/m.exec(text)![1])).toBeGreaterThan(0);
    });
});
