import { createServer, Server } from 'http';
import { AddressInfo } from 'net';
import { readFile } from 'fs/promises';
import { join } from 'path';
import { parseArgs } from 'util';
// Not the broker's API: the repository's bundling helper, so the page is built from app.ts when run from source.
// eslint-disable-next-line no-restricted-imports
import { browserScript } from '../../server/web/browser-script';

const usage = `Usage: npm run web -- [--broker ws://127.0.0.1:8080] [--port 8090] [--host 127.0.0.1]

Serves the browser peer example. Open http://<host>:<port>/ in two tabs (or ?id=alice and ?id=bob).
--broker (or SWITCHBOARD_URL) may name several brokers of one cluster, comma-separated.`;

export interface WebExampleOptions {
    /** The broker the page's peers connect to. */
    brokerUrl: string;
    port?: number;
    host?: string;
}

export interface WebExample {
    url: string;
    close(): Promise<void>;
}

/** This example's folder, from the source (examples/web) and from the compiled example (examples/dist) alike. */
const folder = join(__dirname, '..', 'web');

/** Serves the page with its script (bundled by `npm run build`, or here when that bundle is missing or stale). */
export async function startWebExample(options: WebExampleOptions): Promise<WebExample> {
    const [code, template] = await Promise.all([
        browserScript(join(folder, 'app.ts'), join(folder, 'dist', 'app.js')),
        readFile(join(folder, 'index.html'), 'utf8'),
    ]);
    const html = template.replace('{{BROKER_URL}}', escapeAttribute(options.brokerUrl));
    const server: Server = createServer((request, response) => {
        const path = new URL(request.url ?? '/', 'http://localhost').pathname;
        if (path === '/' || path === '/index.html') {
            response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
        } else if (path === '/app.js') {
            response.writeHead(200, { 'content-type': 'application/javascript; charset=utf-8' }).end(code);
        } else {
            response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found');
        }
    });
    await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 8090, options.host ?? '127.0.0.1', resolve);
    });
    const address = server.address() as AddressInfo;
    return {
        url: `http://${options.host ?? '127.0.0.1'}:${address.port}/`,
        close: () => new Promise(resolve => {
            server.closeAllConnections();
            server.close(() => resolve());
        }),
    };
}

function escapeAttribute(value: string): string {
    return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

async function main(): Promise<void> {
    let values;
    try {
        ({ values } = parseArgs({
            options: {
                broker: { type: 'string', default: process.env.SWITCHBOARD_URL ?? 'ws://127.0.0.1:8080' },
                port: { type: 'string', default: '8090' },
                host: { type: 'string', default: '127.0.0.1' },
                help: { type: 'boolean' },
            },
        }));
    } catch (error) {
        console.error(`${(error as Error).message}\n${usage}`);
        process.exit(2);
    }
    if (values.help) {
        console.log(usage);
        return;
    }
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
        console.error(`--port must be a port number, got "${values.port}".\n${usage}`);
        process.exit(2);
    }
    console.log('Bundling the page…');
    const example = await startWebExample({ brokerUrl: values.broker!, port, host: values.host });
    console.log(`Web peer example on ${example.url} (broker ${values.broker}). Open it in two tabs; Ctrl-C to stop.`);
    process.once('SIGINT', () => void example.close().then(() => process.exit(0)));
    process.once('SIGTERM', () => void example.close().then(() => process.exit(0)));
}

if (require.main === module) {
    main().catch(error => {
        console.error((error as Error).message);
        process.exit(1);
    });
}
