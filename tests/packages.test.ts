import { spawnSync } from 'child_process';
import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

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

    it('an app importing @switchboard/peer and @switchboard/peer/core bundles one SDK and one Deepkit: ES module builds only, PeerCore once', async () => {
        // Installed as npm would: the packages' folders under node_modules, their manifests' exports maps read as is.
        mkdirSync(join(app, 'node_modules', '@switchboard'), { recursive: true });
        symlinkSync(join(root, 'peer', 'dist'), join(app, 'node_modules', '@switchboard', 'peer'), 'dir');
        symlinkSync(join(root, 'shared', 'dist'), join(app, 'node_modules', '@switchboard', 'protocol'), 'dir');
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
            nodePaths: [join(root, 'node_modules')],
            metafile: true,
            logLevel: 'silent',
            // Ours, Deepkit's and rxjs are bundled (each ships CommonJS and ES module builds); the rest stays an import.
            plugins: [{
                name: 'ours-deepkit-rxjs',
                setup(build) {
                    build.onResolve({ filter: /^[^./]/ }, args => /^(@switchboard\/|@deepkit\/|rxjs)/.test(args.path) ? undefined : { path: args.path, external: true });
                },
            }],
        });
        const inputs = Object.keys(result.metafile.inputs);
        // A package's files as paths inside it (the protocol is found through the SDK's folder, as npm may nest it).
        const filesOf = (name: string) => inputs
            .map(input => `/${input}`.split('/node_modules/').pop()!)
            .filter(path => path.startsWith(`${name}/`))
            .map(path => path.slice(name.length + 1));
        for (const name of ['@switchboard/peer', '@switchboard/protocol']) {
            expect(filesOf(name).length).toBeGreaterThan(1);
            expect({ name, commonJs: filesOf(name).filter(file => !file.startsWith('esm/')) }).toEqual({ name, commonJs: [] });
        }
        // One build of each: the CommonJS one beside the ES module one is a second Deepkit (its own type registry).
        for (const name of ['@deepkit/core', '@deepkit/type', '@deepkit/rpc', 'rxjs']) {
            const builds = new Set(filesOf(name).map(file => file.split('/').slice(0, 2).join('/')));
            expect({ name, builds: builds.size }).toEqual({ name, builds: 1 });
        }
        // A second copy would be renamed (PeerCore2): one class, which Peer extends and chat() is given.
        expect(result.outputFiles[0].text.match(/\bclass _?PeerCore\d*\b/g)).toHaveLength(1);
    });
});
