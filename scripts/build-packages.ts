/**
 * The part of `npm run build` after tsc: bundles the browser scripts ahead of time (the compiled broker serves its
 * dashboard without TypeScript or esbuild) and writes each package's published manifest, `<package>/dist/package.json`.
 *
 * Each package is published from its dist/ folder, so `@switchboard/protocol/errors` is `errors.js` there, while in
 * this repository the same name reaches `shared/errors.ts` (the workspace link, without a build). A bundle gets
 * `<bundle>.inputs.json`, the sources it was made from, so code running from source knows when a bundle is stale
 * (server/web/browser-script.ts).
 */
import { existsSync } from 'fs';
import { copyFile, mkdir, readdir, readFile, rm, symlink, writeFile } from 'fs/promises';
import { basename, dirname, join, relative } from 'path';
import { isCurrent } from '../server/web/browser-script';
import { BundleOptions, bundleForBrowser, bundleForNode, bundleModulesForBrowser } from '../server/web/bundler';

const root = join(__dirname, '..');

const bundles: { entryPoint: string, output: string, page?: string, options?: BundleOptions }[] = [
    { entryPoint: 'server/dashboard/dashboard-client.ts', output: 'server/dist/dashboard/dashboard-client.js', page: 'server/dashboard/dashboard.html' },
    { entryPoint: 'examples/web/app.ts', output: 'examples/web/dist/app.js' },
    // The ready bundle: everything inside, for a page without a bundler (<script type="module">).
    { entryPoint: 'peer/browser-entry.ts', output: 'peer/dist/browser/switchboard-peer.mjs', options: { format: 'esm' } },
];

/**
 * The packages (folders) with an ES module build for a browser app's bundler, under `<folder>/dist/esm/`: browser
 * code with runtime types, one module an entry of the exports map (`.` → esm/index.mjs, `./core` → esm/core.mjs,
 * `./features/*` → esm/features/<name>/index.mjs …) and the modules they share in esm/chunks/, once. One build with
 * code splitting, not a bundle an entry: an app importing `@switchboard/peer` and `@switchboard/peer/core` must get
 * one SDK (two copies would be two PeerCore classes, two registries of features). Deepkit, rxjs, yjs and the
 * protocol stay imports. The protocol has its ES module build too: imported as CommonJS beside the SDK's ES modules,
 * it would bring the CommonJS builds of Deepkit and rxjs beside their ES module builds, two of each (a broker call
 * answered with an Observable then fails: the SDK's rxjs `Observable` is not the contract's).
 */
const moduleBuilds = ['shared', 'peer'];

/** The folders of the published packages, by package name. */
const packageFolders: Record<string, string> = {
    '@switchboard/protocol': 'shared',
    '@switchboard/peer': 'peer',
    '@switchboard/broker': 'server',
    '@switchboard/testing': 'testing',
};

/**
 * The examples, each one JavaScript file run by its npm script (`npm run chat` …): they start in about a second,
 * where ts-node took 13–41 s on a busy machine. examples/dist/ sits two folders down like the sources, so paths
 * from `__dirname` hold in both.
 */
const examples: Record<string, string> = {
    chat: 'examples/chat/main.ts',
    collab: 'examples/collab/main.ts',
    share: 'examples/file-share/share.ts',
    fetch: 'examples/file-share/fetch.ts',
    web: 'examples/web/serve.ts',
    cluster: 'examples/cluster/main.ts',
};

async function bundleExamples(): Promise<void> {
    await mkdir(join(root, 'examples', 'dist'), { recursive: true });
    for (const [name, entryPoint] of Object.entries(examples)) {
        const target = join(root, 'examples', 'dist', `${name}.js`);
        if (await isCurrent(target)) continue;
        const { code, inputs } = await bundleForNode(join(root, entryPoint));
        await writeFile(target + '.inputs.json', JSON.stringify(inputs.map(input => relative(dirname(target), input))) + '\n');
        await writeFile(target, code);
    }
}

async function bundle(): Promise<void> {
    for (const { entryPoint, output, page, options } of bundles) {
        const target = join(root, output);
        await mkdir(dirname(target), { recursive: true });
        if (page) await copyFile(join(root, page), join(dirname(target), basename(page)));
        if (await isCurrent(target)) continue;
        const { code, inputs } = await bundleForBrowser(join(root, entryPoint), options);
        await writeFile(target + '.inputs.json', JSON.stringify(inputs.map(input => relative(dirname(target), input))) + '\n');
        await writeFile(target, code);
    }
}

/** The manifest of the published package: the workspace's, with the paths as they are inside dist/. */
async function writeManifest(folder: string): Promise<void> {
    // `scripts` holds the workspace's prepack, which refuses to pack the sources; the built package packs.
    const { private: _private, bin, scripts: _scripts, ...manifest } = JSON.parse(await readFile(join(root, folder, 'package.json'), 'utf8'));
    const inDist = (path: string) => path.replace(/^(\.\/)?dist\//, '');
    const esm = moduleBuilds.includes(folder);
    const published = {
        ...manifest,
        main: 'index.js',
        types: 'index.d.ts',
        // Only in the published manifest: in the workspace, `module` would send `import … from '../../peer'` there.
        ...(esm ? { module: 'esm/index.mjs' } : {}),
        ...(manifest.exports ? { exports: publishedExports(manifest.exports, esm) } : {}),
        ...(Array.isArray(manifest.sideEffects) ? { sideEffects: await publishedSideEffects(folder, manifest.sideEffects as string[], esm) } : {}),
        ...(bin ? { bin: Object.fromEntries(Object.entries(bin as Record<string, string>).map(([name, path]) => [name, inDist(path)])) } : {}),
        // Not the build records (tsbuildinfo) nor the bundles' input lists.
        files: ['**/*.js', '**/*.mjs', '**/*.d.ts', '**/*.html', '!**/*.inputs.json'],
    };
    await writeFile(join(root, folder, 'dist', 'package.json'), JSON.stringify(published, null, 2) + '\n');
    await linkCompiledDependencies(folder, Object.keys(manifest.dependencies ?? {}));
}

/**
 * The `exports` map as published: the workspace's names the TypeScript sources (`./internal.ts`), which the
 * workspace itself reaches through tsconfig `paths`; the package has `<name>.d.ts` for TypeScript and `<name>.js` for
 * Node, and, with an ES module build, `esm/<name>.mjs` for a bundler (the `module` condition, which esbuild, Vite and
 * webpack apply and Node does not, so Node keeps the CommonJS build, also for `import`). Every entry or none: a bundler
 * that took the ES module for one entry and CommonJS for another would bundle the SDK twice. Subpaths not listed are private:
 * Node refuses `@switchboard/protocol/wire` with ERR_PACKAGE_PATH_NOT_EXPORTED.
 */
function publishedExports(exports: Record<string, string>, esm: boolean): Record<string, unknown> {
    const published: Record<string, unknown> = {};
    for (const [subpath, target] of Object.entries(exports)) {
        const path = './' + target.replace(/^\.\//, '').replace(/^dist\//, '');
        if (!path.endsWith('.ts')) {
            published[subpath] = path;
            continue;
        }
        const compiled = path.replace(/\.ts$/, '');
        published[subpath] = {
            types: `${compiled}.d.ts`,
            // Nested: a bundler for Node (which has `module` too) keeps the CommonJS build, which has ws and SQLite.
            ...(esm ? { browser: { module: `./esm/${compiled.replace(/^\.\//, '')}.mjs` } } : {}),
            default: `${compiled}.js`,
        };
    }
    return published;
}

/**
 * The compiled code run in this repository (`npm start`) finds the compiled packages it depends on, as it would once
 * installed: `server/dist/node_modules/@switchboard/protocol` → `shared/dist`. The workspace links in the root
 * node_modules lead to the sources instead, for ts-node, jest and tsc. `npm pack` leaves node_modules out.
 */
async function linkCompiledDependencies(folder: string, dependencies: string[]): Promise<void> {
    const modules = join(root, folder, 'dist', 'node_modules');
    await rm(modules, { recursive: true, force: true });
    for (const name of dependencies.filter(dependency => dependency in packageFolders)) {
        const link = join(modules, name);
        await mkdir(dirname(link), { recursive: true });
        await symlink(relative(dirname(link), join(root, packageFolders[name], 'dist')), link, 'dir');
    }
}

/**
 * The manifest's `sideEffects` with compiled names, and every folder of the ES module build: its chunks hold the
 * listed modules' code (a patch of Deepkit, say) merged with others, so none of them may be dropped as unused.
 */
async function publishedSideEffects(folder: string, sideEffects: string[], esm: boolean): Promise<string[]> {
    const compiled = sideEffects.map(path => path.replace(/\.ts$/, '.js'));
    if (!esm) return compiled;
    const esmFolder = join(root, folder, 'dist', 'esm');
    const folders = (await readdir(esmFolder, { recursive: true, withFileTypes: true }))
        .filter(entry => entry.isDirectory())
        .map(entry => relative(esmFolder, join(entry.parentPath, entry.name)));
    return [...compiled, ...['', ...folders].map(path => `./${join('esm', path, '*.mjs')}`)];
}

/** The exports map's entries that are TypeScript sources, as output name → source (a `*` subpath expanded). */
async function moduleEntries(folder: string, exports: Record<string, string>): Promise<Record<string, string>> {
    const entries: Record<string, string> = {};
    for (const target of Object.values(exports)) {
        if (!target.endsWith('.ts')) continue;
        const source = target.replace(/^\.\//, '');
        const [before, after] = source.split('*');
        const names = after === undefined ? [''] : (await readdir(join(root, folder, before), { withFileTypes: true }))
            .filter(entry => entry.isDirectory() && existsSync(join(root, folder, before, entry.name, after.replace(/^\//, ''))))
            .map(entry => entry.name);
        for (const name of names) {
            const path = after === undefined ? source : `${before}${name}${after}`;
            entries[path.replace(/\.ts$/, '')] = join(root, folder, path);
        }
    }
    return entries;
}

/** The ES module build of `folder` (see {@link moduleBuilds}), made again when a source or the set of entries changed. */
async function bundleModules(folder: string): Promise<void> {
    const { exports } = JSON.parse(await readFile(join(root, folder, 'package.json'), 'utf8')) as { exports: Record<string, string> };
    const entries = await moduleEntries(folder, exports);
    const outdir = join(root, folder, 'dist', 'esm');
    const record = join(outdir, 'index.mjs');
    const outputs = Object.keys(entries).map(name => join(outdir, `${name}.mjs`));
    if (outputs.every(existsSync) && await isCurrent(record)) return;
    // Chunks are named by their content's hash: the last build's would stay beside the new ones.
    await rm(outdir, { recursive: true, force: true });
    const inputs = await bundleModulesForBrowser(entries, outdir);
    await writeFile(record + '.inputs.json', JSON.stringify(inputs.map(input => relative(outdir, input))) + '\n');
}

async function main(): Promise<void> {
    await bundle();
    for (const folder of moduleBuilds) await bundleModules(folder);
    await bundleExamples();
    for (const folder of Object.values(packageFolders)) await writeManifest(folder);
}

if (require.main === module) {
    main().catch(error => {
        console.error(`Building the packages failed: ${(error as Error).message}`);
        process.exit(1);
    });
}
