/**
 * A browser page for tests/web/links-browser.test.ts: one SDK peer with direct links, driven by the test
 * through `window.linkPage`. Bundled for the browser at test time (server/web/bundler.ts).
 */
import { rpc } from '@deepkit/rpc';
import { CallerContext } from '../../peer/caller-context';
import { directLinks } from '../../peer/features/links';
import { Peer } from '../../peer/peer';
import { WebStorageAdapter } from '../../peer/storage/web-storage-adapter';

@rpc.controller('test/browser-echo')
class BrowserEcho {
    constructor(protected caller: CallerContext) {
    }

    @rpc.action()
    echo(text: string): string {
        return text;
    }

    @rpc.action()
    whoCalls(): string {
        return this.caller.peerId ?? '';
    }
}

interface EchoApi {
    echo(text: string): Promise<string>;
    whoCalls(): Promise<string>;
}

function links() {
    return directLinks({ allow: () => true });
}

let peer: Peer<{ links: ReturnType<typeof links> }>;
const events: string[] = [];

const linkPage = {
    events,
    hasRtc: typeof RTCPeerConnection === 'function',
    async start(url: string, id: string): Promise<void> {
        const storage = new WebStorageAdapter(`links-test:${id}`, sessionStorage);
        peer = await Peer.connect({ url, id, storage, features: { links: links() }, expose: [[BrowserEcho, 'test/browser-echo']] });
        peer.features.links.changes$.subscribe(event => events.push(`${event.kind} ${event.peerId}${event.reason ? ` (${event.reason})` : ''}`));
    },
    async open(peerId: string): Promise<void> {
        await peer.features.links.open(peerId);
    },
    states(): string[] {
        return peer.features.links.list().map(link => `${link.peerId} ${link.state}`);
    },
    /** `count` calls at once; how many came back right. */
    async callMany(peerId: string, count: number): Promise<number> {
        const echo = peer.to(peerId).controller<EchoApi>('test/browser-echo');
        const answers = await Promise.all(Array.from({ length: count }, (_, i) => echo.echo(`call ${i}`)));
        return answers.filter((answer, i) => answer === `call ${i}`).length;
    },
    whoCalls(peerId: string): Promise<string> {
        return peer.to(peerId).controller<EchoApi>('test/browser-echo').whoCalls();
    },
    close(peerId: string): void {
        peer.features.links.close(peerId);
    },
};

(globalThis as unknown as { linkPage: typeof linkPage }).linkPage = linkPage;
