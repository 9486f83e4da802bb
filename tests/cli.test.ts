import { existsSync, mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { api, Resources } from './helpers';
import { runProgram } from './processes';

/** The broker's CLI exactly as `npm run broker -- …` runs it. */
const cli = (args: string[], env: Record<string, string>) => runProgram('server/main.ts', args, env);

/** What the program printed, less Deepkit's type-compiler timing warning (it appears when the machine is busy). */
const lines = (output: string) => output.split('\n').filter(line => line && !line.startsWith('Type computation took very long'));

describe('the broker command line', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());
    jest.setTimeout(60000);

    it('token:create → start (token mode, env config) → a peer registers with the token → /health → SIGTERM → peers', async () => {
        const directory = mkdtempSync(join(tmpdir(), 'switchboard-cli-'));
        resources.add(directory, d => rmSync(d, { recursive: true, force: true }));
        const database = join(directory, 'broker.sqlite');
        const env = { SWITCHBOARD_DATABASE: database, SWITCHBOARD_AUTH: 'token', SWITCHBOARD_PORT: '0' };

        // --database, as `start` takes it: the token lands where the broker will look.
        const create = cli(['token:create', 'alice-app', '--peer', 'alice', '--database', database], { SWITCHBOARD_AUTH: 'token' });
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

        const online = cli(['peers', '--online', '--database', database], {});
        expect(await online.exit).toBe(0);
        expect(lines(online.output())).toEqual(['No peer online (1 registered, all offline; see: peers).']);
    });

    it('a read-only command on a database that does not exist says where it looked, exits 1 and creates nothing', async () => {
        const directory = mkdtempSync(join(tmpdir(), 'switchboard-cli-'));
        resources.add(directory, d => rmSync(d, { recursive: true, force: true }));
        const database = join(directory, 'var', 'switchboard.sqlite');
        for (const command of [['peers'], ['audit'], ['token:list']]) {
            const run = cli(command, { SWITCHBOARD_DATABASE: database });
            expect(await run.exit).toBe(1);
            expect(lines(run.output())).toEqual([`No broker database at ${database}. The broker creates it on start; run this in the broker's folder, or pass --database (SWITCHBOARD_DATABASE).`]);
        }
        expect(existsSync(database)).toBe(false);
    });

    it('an unknown command is an error with a suggestion and exit code 2, not an empty command list', async () => {
        const run = cli(['strat'], {});
        expect(await run.exit).toBe(2);
        const [line, ...more] = lines(run.output());
        expect(more).toEqual([]);
        expect(line).toMatch(/^Unknown command "strat"\. Did you mean "start"\? Commands: start, peers, token:create, .+\. See: switchboard --help$/);
    });

    it('--help of a command shows each flag\'s whole text, and start --help the defaults', async () => {
        const create = cli(['token:create', '--help'], {});
        expect(await create.exit).toBe(0);
        expect(create.output()).toMatch(/--peer string +peer IDs it may register: exact, prefix\* or \*; repeat the flag for more/);
        const start = cli(['start', '--help'], {});
        expect(await start.exit).toBe(0);
        expect(start.output()).toMatch(/--port number +TCP port; 0 picks a free one \(default: 8080; SWITCHBOARD_PORT\)/);
        expect(start.output()).toMatch(/--database string +.*\(default: var\/switchboard\.sqlite; SWITCHBOARD_DATABASE\)/);
    });

    it('an invalid environment setting stops start-up with a message naming it, and exit code 1', async () => {
        const run = cli(['start'], { SWITCHBOARD_AUTH: 'tokn', SWITCHBOARD_DATABASE: ':memory:' });
        expect(await run.exit).toBe(1);
        expect(run.output()).toContain('Invalid setting "auth" (SWITCHBOARD_AUTH or --auth)');
    });

    it('--help lists our commands only (not Deepkit\'s server:start, migration:*, debug:*), without colour codes when piped', async () => {
        const run = cli(['--help'], {});
        expect(await run.exit).toBe(0);
        for (const command of ['start', 'peers', 'token:create', 'token:revoke', 'token:list', 'audit']) {
            expect(run.output()).toContain(command);
        }
        expect(run.output()).not.toMatch(/server:start|migration|debug/);
        expect(run.output()).not.toContain('\x1b[');
    });

    it('a second broker on the database of a running one refuses to start, in one line; after a kill -9 of the first, a new one starts', async () => {
        const directory = mkdtempSync(join(tmpdir(), 'switchboard-cli-'));
        resources.add(directory, d => rmSync(d, { recursive: true, force: true }));
        const database = join(directory, 'broker.sqlite');
        const env = { SWITCHBOARD_DATABASE: database, SWITCHBOARD_PORT: '0' };

        const first = cli(['start'], env);
        resources.add(first.child, child => child.exitCode === null && child.kill('SIGKILL'));
        await first.waitFor(/listening on/);

        const second = cli(['start'], env);
        expect(await second.exit).toBe(1);
        expect(lines(second.output())).toEqual([`Another broker is running on ${database}. Stop it first, or start this one with another --database (SWITCHBOARD_DATABASE).`]);

        // The kernel drops the lock with the process: no stale lock to clean up by hand.
        first.child.kill('SIGKILL');
        await first.exit;
        const third = cli(['start'], env);
        resources.add(third.child, child => child.exitCode === null && child.kill('SIGKILL'));
        await third.waitFor(/listening on/);
    });

    it('a port in use is one line and exit code 1', async () => {
        const running = await resources.broker();
        const run = cli(['start', '--port', String(running.port)], { SWITCHBOARD_DATABASE: ':memory:' });
        expect(await run.exit).toBe(1);
        expect(lines(run.output())).toEqual([
            `Port ${running.port} on 127.0.0.1 is in use (another broker or program listens there). Stop it, or start with another --port (SWITCHBOARD_PORT; 0 picks a free one).`,
        ]);
    });

    it('an unknown flag to start is an error: exit code 2, one line, nothing started', async () => {
        const run = cli(['start', '--prot', '4100'], { SWITCHBOARD_DATABASE: ':memory:', SWITCHBOARD_PORT: '0' });
        expect(await run.exit).toBe(2);
        expect(lines(run.output())).toEqual(['Unknown flag "--prot" for start. See: start --help']);
    });
});
