import { spawnSync } from 'child_process';
import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join, relative } from 'path';

const root = join(__dirname, '..');
const folders = ['shared', 'peer', 'server', 'testing'];

/** npm as a user runs it, without the npm_* settings of an `npm test` around it. */
function npm(args: string[], cwd: string): { status: number | null, output: string } {
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
    const result = spawnSync('npm', args, { cwd, env, encoding: 'utf8' });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('the packages cannot be packed wrong', () => {
    jest.setTimeout(60000);
    const destination = mkdtempSync(join(tmpdir(), 'switchboard-pack-'));
    afterAll(() => rmSync(destination, { recursive: true, force: true }));

    it.each(folders)('`npm pack` in %s/ (the TypeScript sources) fails, names the right command and makes no tarball', folder => {
        const { status, output } = npm(['pack', '--pack-destination', destination], join(root, folder));
        expect(status).not.toBe(0);
        // `./`: npm reads `peer/dist` as the GitHub repository peer/dist.
        expect(output).toContain(`From the repository root: npm run build, then npm pack ./${folder}/dist`);
        expect(readdirSync(destination)).toEqual([]);
    });

    it('`npm pack -w peer` from the root fails the same way', () => {
        const { status, output } = npm(['pack', '-w', 'peer', '--pack-destination', destination], root);
        expect(status).not.toBe(0);
        expect(output).toContain('npm pack ./peer/dist');
        expect(readdirSync(destination)).toEqual([]);
    });

    it.each(folders)('the built %s/dist packs: JavaScript and declarations, no TypeScript sources', folder => {
        const { status, output } = npm(['pack', '--dry-run', '--json', `./${folder}/dist`], root);
        expect(status).toBe(0);
        const [{ files }] = JSON.parse(output.slice(output.indexOf('['))) as [{ files: { path: string }[] }];
        const paths = files.map(file => file.path);
        expect(paths).toEqual(expect.arrayContaining(['index.js', 'index.d.ts', 'package.json']));
        expect(paths.filter(path => path.endsWith('.ts') && !path.endsWith('.d.ts'))).toEqual([]);
    });
});

describe('the built peer package in an app\'s bundler', () => {
    jest.setTimeout(60000);
    const app = mkdtempSync(join(tmpdir(), 'switchboard-bundler-'));
    afterAll(() => rmSync(app, { recursive: true, force: true }));

    it('an app importing @switchboard/peer and @switchboard/peer/core bundles one SDK: the ES module build, PeerCore once', async () => {
        // Installed as npm would: the package's folder under node_modules, its manifest's exports map read as is.
        mkdirSync(join(app, 'node_modules', '@switchboard'), { recursive: true });
        symlinkSync(join(root, 'peer', 'dist'), join(app, 'node_modules', '@switchboard', 'peer'), 'dir');
        writeFileSync(join(app, 'app.mjs'), [
            "import { Peer } from '@switchboard/peer';",
            "import { PeerCore } from '@switchboard/peer/core';",
            "import { chat } from '@switchboard/peer/features/chat';",
            'console.log(Peer, PeerCore, chat);',
        ].join('\n'));
        const result = await build({
            entryPoints: [join(app, 'app.mjs')],
            absWorkingDir: app,
            bundle: true,
            write: false,
            platform: 'browser',
            format: 'esm',
            preserveSymlinks: true,
            metafile: true,
            logLevel: 'silent',
            // Only the SDK's own files matter here: everything else (Deepkit, rxjs, the protocol) stays an import.
            plugins: [{
                name: 'only-the-sdk',
                setup(build) {
                    build.onResolve({ filter: /^[^./]/ }, args => args.path.startsWith('@switchboard/peer') ? undefined : { path: args.path, external: true });
                },
            }],
        });
        const sdkFiles = Object.keys(result.metafile.inputs)
            .map(input => relative(join('node_modules', '@switchboard', 'peer'), input))
            .filter(input => !input.startsWith('..') && input !== 'app.mjs');
        expect(sdkFiles.length).toBeGreaterThan(1);
        expect(sdkFiles.filter(file => !file.startsWith('esm/'))).toEqual([]);
        // A second copy would be renamed (PeerCore2): one class, which Peer extends and chat() is given.
        expect(result.outputFiles[0].text.match(/\bclass _?PeerCore\d*\b/g)).toHaveLength(1);
    });
});
