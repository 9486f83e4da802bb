import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { api, Resources } from './helpers';
import { runProgram } from './processes';

/** The broker's CLI exactly as `npm run broker -- …` runs it. */
const cli = (args: string[], env: Record<string, string>) => runProgram('server/main.ts', args, env);

describe('the broker command line', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());
    jest.setTimeout(60000);

    it('token:create → start (token mode, env config) → a peer registers with the token → /health → SIGTERM → peers', async () => {
        const directory = mkdtempSync(join(tmpdir(), 'switchboard-cli-'));
        resources.add(directory, d => rmSync(d, { recursive: true, force: true }));
        const env = { SWITCHBOARD_DATABASE: join(directory, 'broker.sqlite'), SWITCHBOARD_AUTH: 'token', SWITCHBOARD_PORT: '0' };

        const create = cli(['token:create', 'alice-app', '--peer', 'alice'], env);
        expect(await create.exit).toBe(0);
        const token = create.output().match(/^(sbt_\S+)$/m)![1];

        const broker = cli(['start'], env);
        resources.add(broker.child, child => child.exitCode === null && child.kill('SIGKILL'));
        const [, url, port] = await broker.waitFor(/listening on (ws:\/\/127\.0\.0\.1:(\d+))/);

        const peer = resources.peerClient(url, token);
        await peer.connect().catch(error => { throw new Error(`could not connect: ${error}\nbroker output:\n${broker.output()}`); });
        expect((await api(peer).register('alice')).peerId).toBe('alice');
        expect(await (await fetch(`http://127.0.0.1:${port}/health`)).json()).toEqual({ status: 'ok' });
        await peer.disconnect();

        broker.child.kill('SIGTERM');
        expect(await broker.exit).toBe(0);

        const peers = cli(['peers'], env);
        expect(await peers.exit).toBe(0);
        expect(peers.output()).toMatch(/offline\s+alice/);
    });

    it('an invalid environment setting stops start-up with a message naming it, and exit code 1', async () => {
        const run = cli(['start'], { SWITCHBOARD_AUTH: 'tokn', SWITCHBOARD_DATABASE: ':memory:' });
        expect(await run.exit).toBe(1);
        expect(run.output()).toContain('Invalid setting "auth" (SWITCHBOARD_AUTH or --auth)');
    });

    it('--help lists the commands', async () => {
        const run = cli(['--help'], {});
        expect(await run.exit).toBe(0);
        for (const command of ['start', 'peers', 'token:create', 'token:revoke', 'token:list', 'audit']) {
            expect(run.output()).toContain(command);
        }
    });
});
