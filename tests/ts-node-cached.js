/**
 * `node -r ./tests/ts-node-cached.js program.ts`: what `-r ts-node/register/transpile-only` does (with Deepkit's type
 * compiler in TypeScript), with the output kept on disk between processes. The tests run the broker's CLI and the
 * example programs as separate processes some twenty times a run, and compiling the same sources again took about
 * 4 s of CPU each time, more than anything the processes then did.
 *
 * One file's output depends on others (the type compiler reads the files a file imports), so an entry is keyed by all
 * of the project's sources but the test files, the compiler settings and versions: after an edit, each file is
 * compiled afresh once.
 * The cache lives in the system's temporary directory; a stale or broken entry costs a compile, never a wrong result.
 */
'use strict';
const { createHash } = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');

// As ts-node's `require` setting in tsconfig.json does: `@switchboard/*` imports resolve to the sources.
require('tsconfig-paths').register({ baseUrl: root, paths: require('../tsconfig.json').compilerOptions.paths });

/** A hash of everything the compiler's output may depend on. */
function projectFingerprint() {
    const hash = createHash('sha256');
    for (const file of ['tsconfig.json', 'package.json', 'node_modules/typescript/package.json', 'node_modules/@deepkit/type-compiler/package.json']) {
        hash.update(file + '\0' + read(path.join(root, file)) + '\0');
    }
    const walk = directory => {
        let entries;
        try {
            entries = fs.readdirSync(directory, { withFileTypes: true });
        } catch {
            return;
        }
        for (const entry of entries.sort((a, b) => a.name < b.name ? -1 : 1)) {
            const full = path.join(directory, entry.name);
            if (entry.isDirectory()) {
                if (entry.name !== 'node_modules' && entry.name !== 'dist' && !entry.name.startsWith('.')) walk(full);
            } else if (/\.(ts|tsx|json)$/.test(entry.name) && !entry.name.endsWith('.test.ts')) {
                // No program imports a test file: editing one keeps the cache.
                hash.update(path.relative(root, full) + '\0' + read(full) + '\0');
            }
        }
    };
    for (const directory of require('../tsconfig.json').include) walk(path.join(root, directory));
    return hash.digest('hex').slice(0, 24);
}

function read(file) {
    try {
        return fs.readFileSync(file, 'utf8');
    } catch {
        return '';
    }
}

const caches = path.join(os.tmpdir(), 'switchboard-ts-node-cache');
const directory = path.join(caches, projectFingerprint());
if (!fs.existsSync(directory)) forgetOldCaches();

/** Caches of sources as they were a day ago and more: each edit leaves one behind. */
function forgetOldCaches() {
    const dayAgo = Date.now() - 24 * 3600_000;
    try {
        for (const name of fs.readdirSync(caches)) {
            const old = path.join(caches, name);
            if (fs.statSync(old).mtimeMs < dayAgo) fs.rmSync(old, { recursive: true, force: true });
        }
    } catch {
        // None yet, or another process removed it first.
    }
}
let compiler;

function compile(code, filename) {
    // ts-node is loaded (and TypeScript with it) only on a miss.
    compiler ??= require('ts-node').create({ transpileOnly: true, cwd: root });
    return compiler.compile(code, filename);
}

const loadJavaScript = require.extensions['.js'];
require.extensions['.ts'] = function (module, filename) {
    // As ts-node: packages ship JavaScript; a .ts file in node_modules is theirs to compile.
    if (filename.split(path.sep).includes('node_modules')) return loadJavaScript(module, filename);
    const code = fs.readFileSync(filename, 'utf8');
    const entry = path.join(directory, createHash('sha256').update(filename + '\0' + code).digest('hex') + '.js');
    let output;
    try {
        output = fs.readFileSync(entry, 'utf8');
    } catch {
        output = compile(code, filename);
        try {
            fs.mkdirSync(directory, { recursive: true });
            // Written aside and renamed: a process reading it at the same time sees all of it or nothing.
            const partial = `${entry}.${process.pid}`;
            fs.writeFileSync(partial, output);
            fs.renameSync(partial, entry);
        } catch {
            // A read-only or full disk: compiled every time, as without the cache.
        }
    }
    module._compile(output, filename);
};
