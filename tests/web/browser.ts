import { existsSync, mkdirSync } from 'fs';
import { join } from 'path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { Resources } from '../helpers';

/** Debian's Chromium, installed by `.ci/run` (`apt-get install chromium chromium-driver`). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** As root, in a sandbox with no network: no sandbox, no GPU, and none of Chromium's calls home. */
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/**
 * `describe` for browser tests. Without Chromium they are skipped, loudly, on a developer machine; under `CI=true`
 * a missing Chromium fails the run, so CI cannot pass without having run them.
 */
export function describeInBrowser(name: string, tests: () => void): void {
    if (existsSync(CHROMIUM)) {
        return describe(name, () => {
            afterAll(closeBrowser);
            tests();
        });
    }
    const message = `Chromium not found at ${CHROMIUM}: the browser tests need Debian's chromium (apt-get install chromium chromium-driver) or CHROMIUM_PATH.`;
    if (process.env.CI) {
        describe(name, () => it('needs Chromium', () => {
            throw new Error(message);
        }));
        return;
    }
    console.warn(`\n${'!'.repeat(100)}\n!! SKIPPED: ${name}\n!! ${message}\n${'!'.repeat(100)}\n`);
    describe.skip(name, tests);
}

export interface TestBrowser {
    context: BrowserContext;
    /** A new tab. Errors thrown in it are collected in `pageErrors`. */
    open(url: string): Promise<Page>;
    /** Uncaught errors of every tab, with their stacks (which call failed, in a race seen once): a test expects none. */
    pageErrors: string[];
}

/** One Chromium per test file: each test gets a context of its own instead of paying for another browser start. */
let browser: Promise<Browser> | undefined;

async function closeBrowser(): Promise<void> {
    const launched = browser;
    browser = undefined;
    // A launch that failed failed its test already.
    await (await launched?.catch(() => undefined))?.close();
}

/**
 * A fresh browser context in headless Chromium (its own storage, cookies and cache, as a new profile has), closed
 * with `resources`.
 */
export async function launchBrowser(resources: Resources): Promise<TestBrowser> {
    browser ??= chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS, timeout: 30_000 });
    const context = await (await browser).newContext();
    resources.add(context, c => c.close());
    context.setDefaultTimeout(15_000);
    const pageErrors: string[] = [];
    return {
        context,
        pageErrors,
        async open(url: string) {
            const page = await context.newPage();
            page.on('pageerror', error => pageErrors.push(error.stack ?? error.message));
            await page.goto(url);
            return page;
        },
    };
}

/**
 * Where screenshots go: `var/screenshots/` on every run, and `docs/screenshots/` (the README's) when
 * `UPDATE_SCREENSHOTS=1` — run `npm run screenshots` and commit them when the pages changed meaningfully.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
    const directories = [join('var', 'screenshots')];
    if (process.env.UPDATE_SCREENSHOTS === '1') directories.push(join('docs', 'screenshots'));
    for (const directory of directories) {
        mkdirSync(directory, { recursive: true });
        await page.screenshot({ path: join(directory, `${name}.png`) });
    }
}

/** The value of one Prometheus sample (`name` or `name{labels}`) in a /metrics text. */
export function metric(text: string, sample: string): number {
    const line = text.split('\n').find(l => l.startsWith(sample + ' '));
    if (!line) throw new Error(`No sample ${sample} in /metrics`);
    return Number(line.slice(sample.length + 1));
}
