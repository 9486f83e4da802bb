import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { Peer } from '../../peer';
import { startBroker, TokenStore } from '../../server';
import { Resources } from '../helpers';
import { describeInBrowser, launchBrowser, screenshot } from './browser';

describeInBrowser('the broker dashboard, in Chromium', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('token mode: asks for an admin token, then shows peers appear and disappear live', async () => {
        const broker = await resources.broker({ auth: 'token' });
        const tokens = broker.app.get(TokenStore);
        const adminToken = await tokens.create('ops', { peerIds: [], admin: true });
        const appToken = await tokens.create('app', { peerIds: ['alice', 'bob'] });
        const browser = await launchBrowser(resources);

        const page = await browser.open(`${broker.httpUrl}/`);
        await page.locator('#login').waitFor({ state: 'visible' });
        expect(await page.textContent('#error')).toMatch(/authenticate/);
        await page.fill('#token', appToken);
        await page.press('#token', 'Enter');
        await page.locator('#error', { hasText: 'needs an admin token' }).waitFor();

        await page.fill('#token', adminToken);
        await page.press('#token', 'Enter');
        await page.locator('#connection[data-state="live"]').waitFor();
        await page.locator('#login').waitFor({ state: 'hidden' });

        const alice = resources.add(await Peer.connect({ url: broker.url, id: 'alice', token: appToken, capabilities: ['chat', 'files'], sealing: false }), p => p.close());
        const aliceRow = page.locator('tr[data-peer="alice"][data-online="true"]');
        await aliceRow.waitFor();
        expect(await aliceRow.locator('.cap').allTextContents()).toEqual(['chat', 'files']);

        const bob = await Peer.connect({ url: broker.url, id: 'bob', token: appToken, capabilities: ['chat'], sealing: false });
        await page.locator('tr[data-peer="bob"][data-online="true"]').waitFor();
        await alice.chat.send('bob', 'hello');
        await alice.to('nobody').discovery.ping().catch(() => undefined);
        await page.locator('#audit-events li', { hasText: 'call alice → bob switchboard/chat' }).first().waitFor();
        await page.locator('#refusals tr[data-reason="PEER_NOT_FOUND"]').waitFor();

        await bob.close();
        await page.locator('tr[data-peer="bob"][data-online="false"]').waitFor();
        // Peer.close() deregisters before it disconnects.
        await page.locator('#audit-events li', { hasText: 'deregister bob' }).waitFor();
        expect(await page.textContent('#peers-online')).toBe('1');

        await screenshot(page, 'dashboard');
        expect(browser.pageErrors).toEqual([]);
    });

    it('plots the last 15 minutes: calls per second, latency p50/p99 at the broker, peers online, refusals', async () => {
        const broker = await resources.broker();
        const browser = await launchBrowser(resources);
        const page = await browser.open(`${broker.httpUrl}/`);
        await page.locator('#connection[data-state="live"]').waitFor();
        const alice = resources.add(await Peer.connect({ url: broker.url, id: 'alice' }), p => p.close());
        resources.add(await Peer.connect({ url: broker.url, id: 'bob' }), p => p.close());
        for (let call = 0; call < 20; call++) await alice.to('bob').discovery.ping();
        await alice.to('nobody').discovery.ping().catch(() => undefined);

        // Each chart's line: the highest value of the window (data-max), the newest (data-latest).
        const line = (chart: string, series: string) => page.locator(`#${chart} polyline[data-series="${series}"]`);
        /** Waits until the line's attribute is at least `minimum`: the broker samples once a second and pushes the samples. */
        const reaches = (chart: string, series: string, attribute: string, minimum: number) => page.waitForFunction(
            ([selector, name, least]) => Number(document.querySelector(selector)?.getAttribute(name) || 0) >= least,
            [`#${chart} polyline[data-series="${series}"]`, attribute, minimum] as const);
        await reaches('trend-calls', 'calls', 'data-max', 1);
        await reaches('trend-latency', 'p99', 'data-max', 0.001);
        await reaches('trend-refusals', 'refusals', 'data-max', 1);
        await reaches('trend-peers', 'online', 'data-latest', 2);
        expect(await line('trend-peers', 'online').getAttribute('data-latest')).toBe('2');
        expect(Number(await line('trend-latency', 'p50').getAttribute('data-max'))).toBeLessThanOrEqual(Number(await line('trend-latency', 'p99').getAttribute('data-max')));
        expect(await line('trend-calls', 'calls').getAttribute('points')).toMatch(/^[\d.]+,[\d.]+( [\d.]+,[\d.]+)*$/);
        await screenshot(page, 'dashboard-trends');
        expect(browser.pageErrors).toEqual([]);
    });

    it('reconnects by itself when the broker restarts, and shows the new broker\'s view', async () => {
        const database = join(mkdtempSync(join(tmpdir(), 'switchboard-dashboard-')), 'broker.sqlite');
        resources.add(database, file => rmSync(dirname(file), { recursive: true, force: true }));
        const first = resources.add(await startBroker({ port: 0, database, logLevel: 'error' }), b => b.close());
        const browser = await launchBrowser(resources);
        const page = await browser.open(`${first.httpUrl}/`);
        await page.locator('#connection[data-state="live"]').waitFor();
        const alice = resources.add(await Peer.connect({ url: first.url, id: 'alice', reconnect: false }), p => p.close());
        await page.locator('tr[data-peer="alice"][data-online="true"]').waitFor();

        await first.close();
        await alice.close();
        await page.locator('#connection[data-state="down"]').waitFor();

        const second = await resources.broker({ port: first.port, database });
        await page.locator('#connection[data-state="live"]').waitFor();
        // The registry survived the restart; alice is known but not connected to this broker.
        await page.locator('tr[data-peer="alice"][data-online="false"]').waitFor();
        resources.add(await Peer.connect({ url: second.url, id: 'alice' }), p => p.close());
        await page.locator('tr[data-peer="alice"][data-online="true"]').waitFor();
        expect(browser.pageErrors).toEqual([]);
    });
});
