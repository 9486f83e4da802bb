import { DeepkitLoader } from '@deepkit/type-compiler';
import { build, Plugin } from 'esbuild';
import { readFile } from 'fs/promises';
import { resolve } from 'path';

/**
 * Modules the browser does not have. Code that reaches them in a browser build gets one clear error at the point of
 * use (e.g. the SDK's SQLite storage or file sharing), instead of a bundle that fails to build or load.
 */
const NODE_ONLY = /^(node:)?(fs|fs\/promises|path|crypto|os|net|tls|http|https|zlib|stream|child_process|worker_threads|better-sqlite3|@deepkit\/sqlite|ws)$/;

/** Runs Deepkit's type compiler over our TypeScript, so classes served or validated in the browser keep their runtime types. */
function deepkitReflection(): Plugin {
    const loader = new DeepkitLoader();
    return {
        name: 'deepkit-reflection',
        setup(build) {
            build.onLoad({ filter: /\.tsx?$/ }, async args => {
                if (args.path.includes('node_modules')) return undefined;
                const source = await readFile(args.path, 'utf8');
                return { contents: loader.transform(source, args.path), loader: 'ts' };
            });
        },
    };
}

/** Our own modules that only Node runs: the SDK's SQLite storage (a browser peer stores in memory or Web Storage). */
const OURS_NODE_ONLY = /\/storage\/serial-sqlite-adapter$/;

function nodeOnlyStubs(): Plugin {
    return {
        name: 'node-only-stubs',
        setup(build) {
            build.onResolve({ filter: NODE_ONLY }, args => ({ path: args.path, namespace: 'node-only' }));
            build.onResolve({ filter: OURS_NODE_ONLY }, args => ({ path: args.path, namespace: 'node-only' }));
            build.onLoad({ filter: /.*/, namespace: 'node-only' }, args => ({
                contents: `module.exports = new Proxy({}, { get(_, key) {
                    if (key === '__esModule' || typeof key === 'symbol') return undefined;
                    throw new Error(${JSON.stringify(`"${args.path}" is not available in the browser`)} + ' (used: ' + String(key) + ').');
                } });`,
                loader: 'js',
            }));
        },
    };
}

/** Our own packages stay imports too: tsconfig's `paths` would otherwise put a second copy of the protocol inside. */
function ourPackagesExternal(): Plugin {
    return {
        name: 'switchboard-packages-external',
        setup(build) {
            build.onResolve({ filter: /^@switchboard\// }, args => ({ path: args.path, external: true }));
        },
    };
}

export interface BrowserBundle {
    /** The JavaScript of the whole page, one file. */
    code: string;
    /** The project's source files in it (absolute paths; not those in node_modules): a bundle older than one is stale. */
    inputs: string[];
}

export interface BundleOptions {
    minify?: boolean;
    /** `iife` (default): a classic `<script>`; `esm`: an ES module, which exports what the entry point exports. */
    format?: 'iife' | 'esm';
    /** npm packages left as imports (for a build that an app's bundler bundles once more): all of them. */
    externalPackages?: boolean;
}

/** Bundles a browser entry point (TypeScript, importing the SDK and Deepkit) into one script. */
export async function bundleForBrowser(entryPoint: string, options: BundleOptions = {}): Promise<BrowserBundle> {
    const result = await build({
        entryPoints: [entryPoint],
        bundle: true,
        write: false,
        platform: 'browser',
        format: options.format ?? 'iife',
        packages: options.externalPackages ? 'external' : undefined,
        target: 'es2022',
        minify: options.minify ?? true,
        sourcemap: false,
        logLevel: 'silent',
        metafile: true,
        define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
        plugins: [nodeOnlyStubs(), ...options.externalPackages ? [ourPackagesExternal()] : [], deepkitReflection()],
    });
    // Inputs from a plugin's namespace are keyed "namespace:path"; files are keyed relative to the working directory.
    const inputs = Object.keys(result.metafile.inputs)
        .filter(input => !/^[\w-]+:/.test(input) && !input.includes('node_modules'))
        .map(input => resolve(input));
    return { code: result.outputFiles[0].text, inputs };
}

/**
 * Bundles a package's public entry points into ES modules for an app's bundler, in `outdir`: one file an entry
 * (`entryPoints` maps its output name, e.g. `features/chat/index`, to its source) and the modules entries share in
 * `chunks/`, each once, so an app importing two entries gets one copy of what they share. npm packages and our own
 * packages stay imports; Node-only modules are stubbed as in {@link bundleForBrowser}. Returns the sources read.
 */
export async function bundleModulesForBrowser(entryPoints: Record<string, string>, outdir: string): Promise<string[]> {
    const result = await build({
        entryPoints,
        outdir,
        bundle: true,
        splitting: true,
        write: true,
        platform: 'browser',
        format: 'esm',
        packages: 'external',
        target: 'es2022',
        minify: false,
        outExtension: { '.js': '.mjs' },
        chunkNames: 'chunks/[name]-[hash]',
        sourcemap: false,
        logLevel: 'silent',
        metafile: true,
        define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
        plugins: [nodeOnlyStubs(), ourPackagesExternal(), deepkitReflection()],
    });
    return Object.keys(result.metafile.inputs)
        .filter(input => !/^[\w-]+:/.test(input) && !input.includes('node_modules'))
        .map(input => resolve(input));
}

/**
 * Bundles a Node program of ours (an example) into one CommonJS file that starts without TypeScript: our sources
 * inside, with runtime types; npm packages stay `require`s of node_modules.
 */
export async function bundleForNode(entryPoint: string): Promise<BrowserBundle> {
    const result = await build({
        entryPoints: [entryPoint],
        bundle: true,
        write: false,
        platform: 'node',
        format: 'cjs',
        target: 'node20',
        packages: 'external',
        sourcemap: false,
        logLevel: 'silent',
        metafile: true,
        plugins: [deepkitReflection()],
    });
    const inputs = Object.keys(result.metafile.inputs)
        .filter(input => !/^[\w-]+:/.test(input) && !input.includes('node_modules'))
        .map(input => resolve(input));
    return { code: result.outputFiles[0].text, inputs };
}
