import { readFile, stat } from 'fs/promises';
import { dirname, resolve } from 'path';

/**
 * The script of a browser entry point. `npm run build` bundles it ahead of time (scripts/build-packages.ts),
 * so the compiled broker needs neither TypeScript nor esbuild; the bundle is used while it is newer than every
 * source it was made from (listed beside it in `<bundle>.inputs.json`, which the published packages leave out).
 * Running from source (ts-node, tests), a missing or stale bundle is made again here with the development tools.
 */
export async function browserScript(entryPoint: string, prebuilt: string): Promise<string> {
    if (await isCurrent(prebuilt)) return readFile(prebuilt, 'utf8');
    // Required here, not imported: the published broker has no bundler (and no esbuild) and never reaches this line.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { bundleForBrowser } = require('./bundler') as { bundleForBrowser(entryPoint: string): Promise<{ code: string }> };
    return (await bundleForBrowser(entryPoint)).code;
}

/** Whether `bundle` exists and is newer than every source it lists in `<bundle>.inputs.json`. */
export async function isCurrent(bundle: string): Promise<boolean> {
    const built = await stat(bundle).then(stats => stats.mtimeMs, () => undefined);
    if (built === undefined) return false;
    const inputs = await readFile(bundle + '.inputs.json', 'utf8').then(text => JSON.parse(text) as string[], () => []);
    for (const input of inputs) {
        const changed = await stat(resolve(dirname(bundle), input)).then(stats => stats.mtimeMs, () => undefined);
        if (changed !== undefined && changed > built) return false;
    }
    return true;
}
