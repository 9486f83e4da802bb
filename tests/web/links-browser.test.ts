import { createServer, Server } from 'http';
import { AddressInfo } from 'net';
import { join } from 'path';
import { Page } from 'playwright-core';
import { bundleForBrowser } from '../../server/web/bundler';
import { BrokerStats } from '../../server/stats';
import { Resources } from '../helpers';
import { describeInBrowser, launchBrowser } from './browser';

jest.setTimeout(120_000);

/** Serves a blank page with the bundled test page's script, from 127.0.0.1 (a secure context: WebCrypto is there). */
async function servePage(resources: Resources): Promise<string> {
    const { code } = await bundleForBrowser(join(__dirname, 'links-browser-page.ts'), { minify: false });
    const server: Server = createServer((request, response) => {
        if (request.url === '/page.js') return void response.writeHead(200, { 'content-type': 'application/javascript' }).end(code);
        response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>links</title><script src="/page.js"></script>');
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    resources.add(server, s => new Promise(resolve => {
        s.closeAllConnections();
        s.close(() => resolve(undefined));
    }));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/**
 * Runs `expression` (a string: the test's functions carry type annotations the page does not know) in the page.
 * A tab that crashes (as one with the feature once did) fails the test at once instead of leaving it waiting.
 */
function inPage<T>(page: Page, expression: string): Promise<T> {
    const crashed = new Promise<never>((resolve, reject) => page.once('crash', () => reject(new Error(`The page crashed while running ${expression}`))));
    // A crash after the answer is the next expression's (or the page error check's) to report.
    crashed.catch(() => undefined);
    return Promise.race([page.evaluate(expression) as Promise<T>, crashed]);
}

describeInBrowser('direct links between browser pages, in Chromium', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('two pages link (the browser\'s RTCPeerConnection); the broker routes nothing while they make 1,000 calls; closed, calls go through the broker', async () => {
        const broker = await resources.broker();
        const stats = broker.app.get(BrokerStats);
        const url = await servePage(resources);
        const browser = await launchBrowser(resources);
        const alice = await browser.open(url);
        const bob = await browser.open(url);
        expect(await inPage(alice, 'linkPage.hasRtc')).toBe(true);
        await inPage(alice, `linkPage.start(${JSON.stringify(broker.url)}, 'alice')`);
        await inPage(bob, `linkPage.start(${JSON.stringify(broker.url)}, 'bob')`);

        await inPage(alice, 'linkPage.open("bob")');
        await bob.waitForFunction('linkPage.states().includes("alice open")');
        const routedBefore = stats.framesRouted;
        expect(await inPage(alice, 'linkPage.callMany("bob", 1000)')).toBe(1000);
        expect(await inPage(bob, 'linkPage.whoCalls("alice")')).toBe('bob');
        expect(stats.framesRouted).toBe(routedBefore);

        await inPage(bob, 'linkPage.close("alice")');
        await alice.waitForFunction('linkPage.events.some(event => event.startsWith("closed bob"))');
        expect(await inPage(alice, 'linkPage.callMany("bob", 10)')).toBe(10);
        expect(stats.framesRouted).toBeGreaterThan(routedBefore);
        expect(browser.pageErrors).toEqual([]);
    });

    it('a stream over the link, the link closed mid-stream: it ends with Disconnected, the page resubscribes from where it was through the broker, every item once, in order', async () => {
        const broker = await resources.broker();
        const stats = broker.app.get(BrokerStats);
        const url = await servePage(resources);
        const browser = await launchBrowser(resources);
        const alice = await browser.open(url);
        const bob = await browser.open(url);
        await inPage(alice, `linkPage.start(${JSON.stringify(broker.url)}, 'alice')`);
        await inPage(bob, `linkPage.start(${JSON.stringify(broker.url)}, 'bob')`);
        await inPage(alice, 'linkPage.open("bob")');
        await bob.waitForFunction('linkPage.states().includes("alice open")');

        const routedBefore = stats.framesRouted;
        const { items, ends } = await inPage<{ items: number[], ends: string[] }>(alice, 'linkPage.streamAcrossClose("bob", 300, 100)');
        expect(ends).toEqual([expect.stringMatching(/^DISCONNECTED: The direct link to "bob" closed \(closed by this peer\); this stream ended\. Subscribe again/)]);
        expect(items).toEqual(Array.from({ length: 300 }, (_, i) => i));
        // The first part came over the link, the rest through the broker; that call through the broker links the
        // pages again in the background (`auto`), for the calls after it.
        expect(stats.framesRouted).toBeGreaterThan(routedBefore);
        await alice.waitForFunction('linkPage.states().includes("bob open")');
        expect(browser.pageErrors).toEqual([]);
    });

    it('a stream declared resumable moves from the closed link to the broker by itself: one subscription, every item once, in order, then completion', async () => {
        const broker = await resources.broker();
        const stats = broker.app.get(BrokerStats);
        const url = await servePage(resources);
        const browser = await launchBrowser(resources);
        const alice = await browser.open(url);
        const bob = await browser.open(url);
        await inPage(alice, `linkPage.start(${JSON.stringify(broker.url)}, 'alice')`);
        await inPage(bob, `linkPage.start(${JSON.stringify(broker.url)}, 'bob')`);
        await inPage(alice, 'linkPage.open("bob")');
        await bob.waitForFunction('linkPage.states().includes("alice open")');

        const routedBefore = stats.framesRouted;
        const { items, ends } = await inPage<{ items: number[], ends: string[] }>(alice, 'linkPage.resumableAcrossClose("bob", 300, 100)');
        expect(ends).toEqual(['completed']);
        expect(items).toEqual(Array.from({ length: 300 }, (_, i) => i));
        expect(stats.framesRouted).toBeGreaterThan(routedBefore);
        expect(browser.pageErrors).toEqual([]);
    });
});
