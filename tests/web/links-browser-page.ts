/**
 * A browser page for tests/web/links-browser.test.ts: one SDK peer with direct links, driven by the test
 * through `window.linkPage`. Bundled for the browser at test time (server/web/bundler.ts).
 */
import { rpc } from '@deepkit/rpc';
import { Observable } from 'rxjs';
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

    /** The numbers from `from` to `until - 1`, one every few milliseconds: a stream a caller can resume. */
    @rpc.action()
    numbers(from: number, until: number): Observable<number> {
        return new Observable(subscriber => {
            let n = from;
            const timer = setInterval(() => n < until ? subscriber.next(n++) : subscriber.complete(), 2);
            return () => clearInterval(timer);
        });
    }
}

interface EchoApi {
    echo(text: string): Promise<string>;
    whoCalls(): Promise<string>;
    numbers(from: number, until: number): Promise<Observable<number>>;
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
    /**
     * Streams `peerId`'s numbers 0 … count - 1 and closes the link once `closeAt` arrived. The stream ends with
     * Disconnected; like an app would, this resubscribes from the next number it needs (through the broker now).
     */
    async streamAcrossClose(peerId: string, count: number, closeAt: number): Promise<{ items: number[], ends: string[] }> {
        const api = peer.to(peerId).controller<EchoApi>('test/browser-echo');
        const items: number[] = [];
        const ends: string[] = [];
        while (items.length < count) {
            const stream = await api.numbers(items.length, count);
            await new Promise<void>(resolve => stream.subscribe({
                next: n => {
                    items.push(n);
                    if (n === closeAt) peer.features.links.close(peerId);
                },
                error: (error: Error & { code?: string }) => {
                    ends.push(`${error.code}: ${error.message}`);
                    resolve();
                },
                complete: () => resolve(),
            }));
            if (ends.length > 3) break;
        }
        return { items, ends };
    },

    /**
     * The same stream, declared resumable (`numbers` starts from its first argument): when the link closes at
     * `closeAt`, the SDK subscribes again through the broker from the next item, and the one subscription goes on
     * to its completion.
     */
    async resumableAcrossClose(peerId: string, count: number, closeAt: number): Promise<{ items: number[], ends: string[] }> {
        const api = peer.to(peerId).controller<EchoApi>('test/browser-echo', { resumable: { numbers: 0 } });
        const items: number[] = [];
        const ends: string[] = [];
        const stream = await api.numbers(0, count);
        await new Promise<void>(resolve => stream.subscribe({
            next: n => {
                items.push(n);
                if (n === closeAt) peer.features.links.close(peerId);
            },
            error: (error: Error & { code?: string }) => {
                ends.push(`${error.code}: ${error.message}`);
                resolve();
            },
            complete: () => {
                ends.push('completed');
                resolve();
            },
        }));
        return { items, ends };
    },
};

(globalThis as unknown as { linkPage: typeof linkPage }).linkPage = linkPage;
