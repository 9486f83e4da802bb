/**
 * The part of `npm run build` after tsc: bundles the browser scripts ahead of time (the compiled broker serves its
 * dashboard without TypeScript or esbuild) and writes each package's published manifest, `<package>/dist/package.json`.
 *
 * Each package is published from its dist/ folder, so `@switchboard/protocol/errors` is `errors.js` there, while in
 * this repository the same name reaches `shared/errors.ts` (the workspace link, without a build). A bundle gets
 * `<bundle>.inputs.json`, the sources it was made from, so code running from source knows when a bundle is stale
 * (server/web/browser-script.ts).
 */
import { copyFile, mkdir, readFile, rm, symlink, writeFile } from 'fs/promises';
import { basename, dirname, join, relative } from 'path';
import { isCurrent } from '../server/web/browser-script';
import { BundleOptions, bundleForBrowser, bundleForNode } from '../server/web/bundler';

const root = join(__dirname, '..');

const bundles: { entryPoint: string, output: string, page?: string, options?: BundleOptions }[] = [
    { entryPoint: 'server/dashboard/dashboard-client.ts', output: 'server/dist/dashboard/dashboard-client.js', page: 'server/dashboard/dashboard.html' },
    { entryPoint: 'examples/web/app.ts', output: 'examples/web/dist/app.js' },
    // The peer SDK's ES module build, for an app's bundler (the package's `module`): browser code, with runtime
    // types; Deepkit, rxjs, yjs and the protocol stay imports, so the app has one copy of each.
    { entryPoint: 'peer/index.ts', output: 'peer/dist/esm/index.mjs', options: { format: 'esm', externalPackages: true, minify: false } },
    // The ready bundle: everything inside, for a page without a bundler (<script type="module">).
    { entryPoint: 'peer/browser-entry.ts', output: 'peer/dist/browser/switchboard-peer.mjs', options: { format: 'esm' } },
];

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
    const esm = bundles.some(({ output }) => output === `${folder}/dist/esm/index.mjs`);
    const published = {
        ...manifest,
        main: 'index.js',
        types: 'index.d.ts',
        // Only in the published manifest: in the workspace, `module` would send `import … from '../../peer'` there.
        ...(esm ? { module: 'esm/index.mjs' } : {}),
        ...(manifest.exports ? { exports: publishedExports(manifest.exports, esm) } : {}),
        ...(Array.isArray(manifest.sideEffects) ? { sideEffects: (manifest.sideEffects as string[]).map(path => path.replace(/\.ts$/, '.js')) } : {}),
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
 * Node, and the entry point's ES module build for a bundler (the `module` condition, which esbuild, Vite and webpack
 * apply and Node does not, so Node keeps the CommonJS build, also for `import`). Subpaths not listed are private:
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
            ...(esm && subpath === '.' ? { module: './esm/index.mjs' } : {}),
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

async function main(): Promise<void> {
    await bundle();
    await bundleExamples();
    for (const folder of Object.values(packageFolders)) await writeManifest(folder);
}

if (require.main === module) {
    main().catch(error => {
        console.error(`Building the packages failed: ${(error as Error).message}`);
        process.exit(1);
    });
}
