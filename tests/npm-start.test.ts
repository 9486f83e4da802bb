import { spawn } from 'child_process';
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { createServer } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import { Resources } from './helpers';

const root = join(__dirname, '..');

/** The processes `pid` started (Linux); empty once it has none. */
function childrenOf(pid: number): number[] {
    try {
        return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
        return [];
    }
}

function isAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

/** Resolves once something may listen on `port` again: nothing else holds it. */
function portIsFree(port: number): Promise<boolean> {
    return new Promise(resolve => {
        const server = createServer();
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
}

describe('npm start', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());
    // `npm start` builds first: a no-op after `npm install`, a full build after a change to the sources.
    jest.setTimeout(180000);

    it('SIGTERM to the npm process stops the broker: it flushes, exits 0 and frees its port (no broker left behind)', async () => {
        const directory = mkdtempSync(join(tmpdir(), 'switchboard-npm-start-'));
        resources.add(directory, d => rmSync(d, { recursive: true, force: true }));
        const npm = spawn('npm', ['start'], {
            cwd: root,
            env: { ...process.env, FORCE_COLOR: '0', SWITCHBOARD_PORT: '0', SWITCHBOARD_DATABASE: join(directory, 'broker.sqlite') },
            stdio: ['ignore', 'pipe', 'pipe'],
            detached: true,  // its own process group, so that the clean-up below reaches whatever it left behind
        });
        let output = '';
        npm.stdout!.on('data', chunk => output += chunk);
        npm.stderr!.on('data', chunk => output += chunk);
        const exit = new Promise<number | string>(resolve => npm.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
        resources.add(npm.pid!, group => {
            try {
                process.kill(-group, 'SIGKILL');
            } catch {
                // nothing left
            }
        });

        const port = await new Promise<number>((resolve, reject) => {
            const check = () => {
                const match = /listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(output);
                if (match) resolve(Number(match[1]));
            };
            npm.stdout!.on('data', check);
            npm.stderr!.on('data', check);
            void exit.then(code => reject(new Error(`npm start exited (${code}) before the broker listened:\n${output}`)));
        });
        // What npm runs: the broker itself, not a shell that would die alone and leave the broker to PID 1.
        const [broker] = childrenOf(npm.pid!);
        expect(broker).toBeDefined();

        npm.kill('SIGTERM');
        // npm exits with the broker's code; a broker killed by the signal would not give 0. The output shows why.
        // SIGTERM drains first (peers are told to move to another broker), then stops.
        expect({ code: await exit, output }).toEqual({ code: 0, output: expect.stringMatching(/SIGTERM: (stopping|draining)/) });
        expect(isAlive(broker)).toBe(false);
        expect(await portIsFree(port)).toBe(true);
    });

    it('the examples\' npm scripts build, then run compiled JavaScript (no ts-node), like npm start', async () => {
        const run = spawn('npm', ['run', 'chat', '--', '--id', 'alice', '--url', 'ws://127.0.0.1:9', '--storage', ':memory:'], {
            cwd: root,
            env: { ...process.env, FORCE_COLOR: '0' },
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        run.stdout!.on('data', chunk => output += chunk);
        run.stderr!.on('data', chunk => output += chunk);
        const code = await new Promise<number | null>(resolve => run.on('exit', resolve));
        expect({ code, output }).toEqual({ code: 1, output: expect.stringContaining('Cannot reach the broker at ws://127.0.0.1:9.') });
        expect(output).toContain('exec node examples/dist/chat.js --id alice');
        expect(output).not.toContain('ts-node');
    });
});
