import { spawnSync } from 'child_process';
import { mkdtempSync, readdirSync, rmSync } from 'fs';
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
