import { http, HtmlResponse, Response } from '@deepkit/http';
import { readFile } from 'fs/promises';
import { join } from 'path';
import { browserScript } from '../web/browser-script';

const SOURCES = join(__dirname, '..', 'dashboard');
/**
 * The page may load from and talk to its own origin only (its script, and the broker's WebSocket). `unsafe-eval`:
 * Deepkit compiles its serializers with `new Function`.
 */
const CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:";

/** Bundled once per process, on the first request: a broker nobody looks at never pays for it. */
let script: Promise<string> | undefined;

/** The operator's dashboard: a static page whose script subscribes to `BrokerApi.dashboard()`. */
export class DashboardController {
    @http.GET('/')
    async page() {
        const html = await readFile(join(SOURCES, 'dashboard.html'), 'utf8');
        return new HtmlResponse(html).header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    }

    @http.GET('/dashboard.js')
    async script() {
        script ??= browserScript(join(SOURCES, 'dashboard-client.ts'), join(SOURCES, 'dashboard-client.js'));
        try {
            return new Response(await script, 'application/javascript; charset=utf-8');
        } catch (error) {
            script = undefined;
            return new Response(`Building the dashboard failed: ${(error as Error).message}`, 'text/plain; charset=utf-8', 500);
        }
    }
}
