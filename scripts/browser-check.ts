/**
 * `npm run browser-check`: README.md's "A browser app of your own", done for real, as `npm run pack-check` does the
 * Node app. Packs @switchboard/protocol and @switchboard/peer, then in a new folder outside the repository runs the
 * section's shell lines and writes its files (the @switchboard packages from the tarballs, everything else from the
 * registry). Then it starts a broker and the Node peer `bob` with the README's greeter, serves the app's `public/`,
 * and opens both pages (the app bundled with esbuild, and the page using the ready bundle) in Chromium: each must show
 * bob's greeting, with no error in the page. The first failing step ends the run; the folder is kept for a look.
 */
import { rpc } from '@deepkit/rpc';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { createServer, Server } from 'http';
import { AddressInfo } from 'net';
import { tmpdir } from 'os';
import { dirname, extname, join, normalize } from 'path';
import { chromium } from 'playwright-core';
import { CallerContext } from '@switchboard/peer';
import { startSwitchboard, SwitchboardTestKit } from '@switchboard/testing';
import { readReadmeSection } from './readme-section';
import { CheckSteps, fail, run, StepFailed } from './check-steps';
import { ControllerSymbol } from '@deepkit/rpc';

const repository = join(__dirname, '..');
const SECTION = '## A browser app of your own';
/** Debian's Chromium, as the browser tests use it (tests/web/browser.ts). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

interface GreeterApi {
    greet(name: string): string;
}

const GreeterApi = ControllerSymbol<GreeterApi>('app/greeter');

/** The greeter of README's "Use it in your app", as the Node peer `bob` exposes it. */
@rpc.controller(GreeterApi)
class Greeter implements GreeterApi {
    constructor(private caller: CallerContext) {
    }

    @rpc.action()
    greet(name: string): string {
        return `Hello ${name} (asked by ${this.caller.peerId})`;
    }
}

const steps = new CheckSteps('browser-check');
const step = (title: string): void => steps.step(title);

/** A README command as run here: the @switchboard packages from the tarballs (the protocol with the peer). */
function withTarballs(commandLine: string, tarballs: Record<string, string>): string {
    if (!/^npm install\b/.test(commandLine) || !commandLine.includes('@switchboard/')) return commandLine;
    return commandLine.replace(/@switchboard\/[\w-]+/g, name => {
        if (!tarballs[name]) fail(`README.md installs ${name}, which this check does not pack`);
        return `${JSON.stringify(tarballs[name])} ${JSON.stringify(tarballs['@switchboard/protocol'])}`;
    });
}

const CONTENT_TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript' };

/** A static file server for the app's public/ folder, on a free port. */
async function serve(folder: string): Promise<{ server: Server, url: string }> {
    const server = createServer((request, response) => {
        const path = normalize(join(folder, decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname)));
        const file = path.endsWith('/') ? join(path, 'index.html') : path;
        if (request.url === '/favicon.ico') {
            response.writeHead(204).end();  // not the app's: Chromium asks for it, and a 404 would count as a page error
            return;
        }
        if (!file.startsWith(folder) || !existsSync(file)) {
            response.writeHead(404).end();
            return;
        }
        response.writeHead(200, { 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * One copy of each package in the app's bundle, read from the `// node_modules/<file>` comments esbuild writes above
 * each module when not minifying: our packages' ES module builds only (their CommonJS files beside them would be a
 * second SDK), and one build of each dependency (CommonJS and ES module builds of Deepkit are two Deepkits).
 */
function checkOneCopy(bundle: string): void {
    const commonJs = [...bundle.matchAll(/^\/\/ node_modules\/(@switchboard\/[\w-]+\/(?!esm\/)\S+)/gm)].map(match => match[1]);
    if (commonJs.length) fail('the app\'s bundle holds CommonJS files of our packages beside their ES module builds', commonJs.slice(0, 10).join('\n'));
    const builds = new Map<string, Set<string>>();
    for (const [, name, build] of bundle.matchAll(/^\/\/ node_modules\/((?:@[\w-]+\/)?[\w.-]+)\/dist\/([\w-]+)\//gm)) {
        builds.set(name, (builds.get(name) ?? new Set()).add(build));
    }
    const twice = [...builds].filter(([, found]) => found.size > 1);
    if (twice.length) fail('the app\'s bundle holds two builds of a package', twice.map(([name, found]) => `${name}: ${[...found].join(', ')}`).join('\n'));
    console.log(`one copy of each package in the app's bundle (${builds.size} with builds in dist/)`);
}

/** Opens `page` in Chromium and waits for its `#out` to leave "connecting …"; fails unless it shows `expected`. */
async function checkPage(pageUrl: string, expected: string): Promise<void> {
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: 60_000 });
    try {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('pageerror', error => errors.push(error.message));
        page.on('console', message => message.type() === 'error' && errors.push(message.text()));
        await page.goto(pageUrl);
        await page.waitForFunction(() => document.getElementById('out')?.textContent !== 'connecting …', undefined, { timeout: 60_000 });
        const shown = await page.textContent('#out');
        if (shown !== expected || errors.length) fail(`${pageUrl} shows "${shown}", not "${expected}"`, errors.join('\n'));
        console.log(`${pageUrl}: "${shown}"`);
    } finally {
        await browser.close();
    }
}

async function main(): Promise<void> {
    const work = mkdtempSync(join(tmpdir(), 'switchboard-browser-check-'));
    const app = join(work, 'app');
    mkdirSync(app);
    const startedAt = Date.now();
    let kit: SwitchboardTestKit | undefined;
    let server: Server | undefined;
    try {
        if (!existsSync(CHROMIUM)) fail(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
        const items = (() => {
            try {
                return readReadmeSection(repository, SECTION, ['ts', 'json', 'html']);
            } catch (error) {
                return fail((error as Error).message);
            }
        })();

        step('build and pack @switchboard/protocol and @switchboard/peer');
        // --no-build: pack the dist/ folders as the last build left them.
        if (!process.argv.includes('--no-build')) run('npm run build --silent', repository);
        const tarballs: Record<string, string> = {};
        for (const [name, folder] of [['@switchboard/protocol', 'shared'], ['@switchboard/peer', 'peer']]) {
            const output = run(`npm pack ./${folder}/dist --pack-destination ${JSON.stringify(work)} --silent`, repository);
            tarballs[name] = join(work, output.trim().split('\n').pop()!);
        }

        for (const item of items) {
            if ('path' in item) {
                step(`write ${item.path} (README)`);
                mkdirSync(dirname(join(app, item.path)), { recursive: true });
                writeFileSync(join(app, item.path), item.content);
                continue;
            }
            for (const line of item.commands) {
                step(`${line} (README)`);
                const output = run(withTarballs(line, tarballs), app);
                if (/EBADENGINE/.test(output)) fail('npm warned about an engine', output);
            }
        }
        const bundle = readFileSync(join(app, 'public/app.js'), 'utf8');
        if (/better-sqlite3|SerialConnectionPool/.test(bundle)) fail('the app\'s bundle holds the SQLite storage: the package\'s ES module build should have left it out');
        checkOneCopy(bundle);
        console.log(`the app's bundle: ${(bundle.length / 1024).toFixed(0)} KiB`);

        step('a broker and the Node peer bob; public/ served; both pages in Chromium call bob');
        kit = await startSwitchboard({ peers: [{ id: 'bob', expose: [[Greeter, GreeterApi]] }] });
        const served = await serve(join(app, 'public'));
        server = served.server;
        const broker = encodeURIComponent(kit.url);
        await checkPage(`${served.url}/index.html?broker=${broker}`, 'Hello Browser (asked by browser)');
        await checkPage(`${served.url}/ready.html?broker=${broker}`, 'Hello Ready (asked by browser-ready)');

        rmSync(work, { recursive: true, force: true });
        console.log(`\nbrowser-check passed in ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
    } catch (error) {
        const message = error instanceof StepFailed ? error.message : (error as Error).stack;
        console.error(`\nbrowser-check FAILED at step ${steps.number}: ${message}\n(the app is kept in ${app})`);
        process.exitCode = 1;
    } finally {
        server?.close();
        await kit?.close();
    }
}

void main();
