import { Peer } from '../../peer';
import { usesCluster } from '../cluster/cluster-fixture';
import { describeWithNats } from '../cluster/nats-server';
import { Resources } from '../helpers';
import { describeInBrowser, launchBrowser } from './browser';

describeWithNats('the dashboard\'s trends in a cluster', () => {
    describeInBrowser('in Chromium', () => {
        const resources = new Resources();
        const context = usesCluster(resources);

        it('peers online: a line per broker beside the namespace\'s total', async () => {
            const first = await context.cluster.broker();
            const second = await context.cluster.broker();
            const browser = await launchBrowser(resources);
            const page = await browser.open(`${first.httpUrl}/`);
            await page.locator('#connection[data-state="live"]').waitFor();
            resources.add(await Peer.connect({ url: first.url, id: 'alice' }), p => p.close());
            resources.add(await Peer.connect({ url: second.url, id: 'bob' }), p => p.close());

            // The broker samples once a second; the page draws what arrives.
            const latest = (series: string, value: string) => page.locator(`#trend-peers polyline[data-series="${series}"][data-latest="${value}"]`).waitFor();
            await latest('online', '2');
            await latest('b1', '1');
            await latest('b2', '1');
            expect(browser.pageErrors).toEqual([]);
        });
    });
});
