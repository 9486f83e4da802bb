import { Peer } from '../../peer';
import { Resources } from '../helpers';
import { describeInBrowser, launchBrowser, screenshot } from './browser';

describeInBrowser('the dashboard\'s brokers, in Chromium', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    it('a single broker: one broker alive, marked as this one, holding each online peer', async () => {
        const broker = await resources.broker();
        const { brokerId } = await (await fetch(`${broker.httpUrl}/status`)).json();
        const browser = await launchBrowser(resources);
        const page = await browser.open(`${broker.httpUrl}/`);
        await page.locator('#connection[data-state="live"]').waitFor();

        resources.add(await Peer.connect({ url: broker.url, id: 'alice' }), p => p.close());
        const row = page.locator(`#brokers tr[data-broker="${brokerId}"][data-alive="true"]`);
        // The activity update that counts alice (sent when something changed).
        await row.locator('td:nth-child(3)', { hasText: /^1$/ }).waitFor();
        expect(await row.locator('td').first().textContent()).toContain('(this)');
        expect(await page.textContent('#brokers-alive')).toBe('1 of 1 alive');
        await page.locator('tr[data-peer="alice"] td:nth-child(3)', { hasText: '(this)' }).waitFor();

        await screenshot(page, 'dashboard-brokers');
        expect(browser.pageErrors).toEqual([]);
    });
});
