import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { Page } from 'playwright-core';
import { Peer } from '../../peer';
import { startBroker } from '../../server';
import { startWebExample } from '../../examples/web/serve';
import { Resources } from '../helpers';
import { describeInBrowser, launchBrowser, metric, screenshot } from './browser';

const DELIVERED = 'switchboard_calls_routed_total{outcome="delivered"}';

describeInBrowser('browser peers (examples/web), in Chromium', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    const documentOf = (page: Page) => page.inputValue('#doc');
    /** A string, not a function: the test's functions carry Deepkit type annotations the page does not know. */
    const documentContains = async (page: Page, ...parts: string[]) => {
        try {
            await page.waitForFunction(`${JSON.stringify(parts)}.every(part => document.getElementById('doc').value.includes(part))`);
        } catch (error) {
            throw new Error(`The document never contained ${JSON.stringify(parts)}; it reads ${JSON.stringify(await documentOf(page))}`);
        }
    };

    it('two tabs register, see each other live, chat with delivery status, converge on a shared document and survive a reload', async () => {
        const broker = await resources.broker();
        const web = resources.add(await startWebExample({ brokerUrl: broker.url, port: 0 }), w => w.close());
        const metricsBefore = await (await fetch(`${broker.httpUrl}/metrics`)).text();
        const browser = await launchBrowser(resources);

        const alice = await browser.open(`${web.url}?id=alice`);
        await alice.locator('#state', { hasText: 'registered' }).waitFor();
        const bob = await browser.open(`${web.url}?id=bob`);
        await bob.locator('#members li[data-peer="alice"][data-online="true"]').waitFor();
        await alice.locator('#members li[data-peer="bob"][data-online="true"]').waitFor();

        // Chat, with the status the sender sees moving to "read" once bob's tab shows the message.
        await alice.click('#members li[data-peer="bob"]');
        await alice.fill('#chat-input', 'hello bob');
        await alice.press('#chat-input', 'Enter');
        await bob.locator('#messages li[data-direction="in"]', { hasText: 'hello bob' }).waitFor();
        await alice.locator('#messages li[data-direction="out"][data-status="read"]', { hasText: 'hello bob' }).waitFor();
        await bob.fill('#chat-input', 'hi alice');
        await bob.press('#chat-input', 'Enter');
        await alice.locator('#messages li[data-direction="in"]', { hasText: 'hi alice' }).waitFor();

        // A Node peer is a member like any other, and chats with the browser.
        const carol = resources.add(await Peer.connect({ url: broker.url, id: 'carol' }), p => p.close());
        await alice.locator('#members li[data-peer="carol"][data-online="true"]').waitFor();
        expect((await carol.chat.send('bob', 'from node')).status).toBe('delivered');
        await bob.click('#members li[data-peer="carol"]');
        await bob.locator('#messages li[data-direction="in"]', { hasText: 'from node' }).waitFor();

        // The document: one types, the other sees it; then both type at once at both ends.
        await alice.locator('#doc:enabled').waitFor();
        await alice.click('#doc');
        await alice.keyboard.type('Shared notes. ');
        await documentContains(bob, 'Shared notes. ');
        await bob.locator('#doc:enabled').waitFor();
        await bob.click('#doc');
        await bob.keyboard.press('End');
        await Promise.all([alice.keyboard.type('[alice was here] '), bob.keyboard.type('[bob too]')]);
        await Promise.all([alice, bob].map(tab => documentContains(tab, 'Shared notes. ', '[alice was here] ', '[bob too]')));
        expect(await documentOf(alice)).toBe(await documentOf(bob));

        await screenshot(alice, 'web-peer');

        // A reloaded tab registers again, keeps its chat history (the tab's sessionStorage) and its document.
        await alice.reload();
        await alice.locator('#state', { hasText: 'registered' }).waitFor();
        await alice.click('#members li[data-peer="bob"]');
        await alice.locator('#messages li[data-direction="out"][data-status="read"]', { hasText: 'hello bob' }).waitFor();
        await alice.locator('#messages li[data-direction="in"]', { hasText: 'hi alice' }).waitFor();
        await documentContains(alice, 'Shared notes. ', '[alice was here] ', '[bob too]');
        expect(await documentOf(alice)).toBe(await documentOf(bob));

        // Presence is live: closing bob's tab shows him offline to alice.
        await bob.close();
        await alice.locator('#members li[data-peer="bob"][data-online="false"]').waitFor();

        const metricsAfter = await (await fetch(`${broker.httpUrl}/metrics`)).text();
        expect(metric(metricsAfter, DELIVERED)).toBeGreaterThan(metric(metricsBefore, DELIVERED) + 10);
        expect(metric(metricsAfter, 'switchboard_bytes_routed_total')).toBeGreaterThan(metric(metricsBefore, 'switchboard_bytes_routed_total'));
        // alice, bob, carol, and alice again after her reload.
        expect(metric(metricsAfter, 'switchboard_registrations_total')).toBe(4);
        expect(metric(metricsAfter, 'switchboard_peers_online')).toBe(2);
        expect(browser.pageErrors).toEqual([]);
    });

    it('an invalid or taken ID is explained on the page, and another one joins', async () => {
        const broker = await resources.broker();
        const web = resources.add(await startWebExample({ brokerUrl: broker.url, port: 0 }), w => w.close());
        resources.add(await Peer.connect({ url: broker.url, id: 'carol' }), p => p.close());
        const browser = await launchBrowser(resources);

        const tab = await browser.open(`${web.url}?id=${encodeURIComponent('no spaces')}`);
        await tab.locator('#join-error', { hasText: 'Invalid peer ID "no spaces"' }).waitFor();
        await tab.fill('#peer-id', 'carol');
        await tab.press('#peer-id', 'Enter');
        await tab.locator('#join-error', { hasText: 'Peer ID "carol" is held by another live client' }).waitFor();
        await tab.fill('#peer-id', 'dave');
        await tab.press('#peer-id', 'Enter');
        await tab.locator('#state', { hasText: 'registered' }).waitFor();
        await tab.locator('#members li[data-peer="carol"][data-online="true"]').waitFor();
        expect(browser.pageErrors).toEqual([]);
    });

    it('a tab reconnects by itself after a broker restart and chats again', async () => {
        const database = join(mkdtempSync(join(tmpdir(), 'switchboard-web-')), 'broker.sqlite');
        resources.add(database, file => rmSync(dirname(file), { recursive: true, force: true }));
        const first = resources.add(await startBroker({ port: 0, database, logLevel: 'error' }), b => b.close());
        const web = resources.add(await startWebExample({ brokerUrl: first.url, port: 0 }), w => w.close());
        const browser = await launchBrowser(resources);
        const alice = await browser.open(`${web.url}?id=alice`);
        await alice.locator('#state', { hasText: 'registered' }).waitFor();

        await first.close();
        await alice.locator('#state', { hasText: /disconnected|connecting/ }).waitFor();
        const second = await resources.broker({ port: first.port, database });
        await alice.locator('#state', { hasText: 'registered' }).waitFor();

        const bob = resources.add(await Peer.connect({ url: second.url, id: 'bob' }), p => p.close());
        expect((await bob.chat.send('alice', 'welcome back')).status).toBe('delivered');
        await alice.locator('#messages li[data-direction="in"]', { hasText: 'welcome back' }).waitFor();
        // Set up even when the broker went away while the page was still loading the members after registering.
        await alice.locator('#doc:not([disabled])').waitFor();
        expect(browser.pageErrors).toEqual([]);
    });
});
