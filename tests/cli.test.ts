import { ChildProcess, spawn } from 'child_process';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { api, Resources } from './helpers';

const root = join(__dirname, '..');

interface Run {
    child: ChildProcess;
    output: () => string;
    exit: Promise<number>;
}

/** Runs the broker's CLI exactly as `npm run broker -- …` does, with only the given environment on top. */
function cli(args: string[], env: Record<string, string>): Run {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'server/main.ts', ...args], {
        cwd: root,
        env: { ...process.env, FORCE_COLOR: '0', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', chunk => output += chunk);
    child.stderr!.on('data', chunk => output += chunk);
    const exit = new Promise<number>(resolve => child.on('exit', code => resolve(code ?? -1)));
    return { child, output: () => output, exit };
}

function waitForOutput(run: Run, pattern: RegExp, timeoutMs = 20000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${pattern} in output: ${run.output()}`)), timeoutMs);
        const check = () => {
            const match = run.output().match(pattern);
            if (!match) return;
            clearTimeout(timer);
            resolve(match);
        };
        run.child.stdout!.on('data', check);
        run.child.stderr!.on('data', check);
        run.exit.then(() => {
            check();
            clearTimeout(timer);
            reject(new Error(`exited without ${pattern}: ${run.output()}`));
        });
    });
}

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
        const [, url, port] = await waitForOutput(broker, /listening on (ws:\/\/127\.0\.0\.1:(\d+))/);

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
