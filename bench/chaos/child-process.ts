import { ChildProcess, spawn } from 'child_process';
import { join } from 'path';

const root = join(__dirname, '..', '..');
/** Output kept of a long-running child, for diagnostics: a flooded broker can log without end. */
const KEPT_OUTPUT = 64 * 1024;
/** Output kept of a command run to its end (`audit --limit …`): all of it is the answer. */
const KEPT_COMMAND_OUTPUT = 64 * 2 ** 20;
const running = new Set<ChildProcess>();

// Every child dies with the harness, however it ends: a broker left behind would hold a port and a core.
process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
});

/**
 * A TypeScript program of this project in its own process (ts-node, transpile-only, as `npm run` does). Its output
 * is read all the time: on Linux a pipe nobody reads blocks the writer, and a broker blocked on logging would look
 * hung for the wrong reason.
 */
export class ChildProgram {
    protected text = '';
    protected listeners = new Set<() => void>();
    readonly exited: Promise<number | string>;

    /** @param nodeArgs more options of node, after ts-node's registration (so `-r` may load TypeScript) */
    constructor(readonly script: string, readonly args: string[], env: Record<string, string> = {}, protected keptOutput = KEPT_OUTPUT, nodeArgs: string[] = []) {
        this.child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', ...nodeArgs, script, ...args], {
            cwd: root,
            env: { ...process.env, FORCE_COLOR: '0', ...env },
            stdio: ['pipe', 'pipe', 'pipe'],
        });
        running.add(this.child);
        const append = (chunk: Buffer) => {
            this.text = (this.text + chunk).slice(-this.keptOutput);
            for (const listener of [...this.listeners]) listener();
        };
        this.child.stdout!.on('data', append);
        this.child.stderr!.on('data', append);
        this.child.stdin!.on('error', () => undefined);
        this.exited = new Promise(resolve => this.child.on('exit', (code, signal) => {
            running.delete(this.child);
            resolve(code ?? signal ?? -1);
            for (const listener of [...this.listeners]) listener();
        }));
    }

    readonly child: ChildProcess;

    get pid(): number {
        return this.child.pid!;
    }

    get alive(): boolean {
        return this.child.exitCode === null && this.child.signalCode === null;
    }

    output(): string {
        return this.text;
    }

    /** The first match of `pattern` in the output; rejects when the program exits or `timeoutMs` passes first. */
    waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
        return new Promise((resolve, reject) => {
            const done = () => {
                clearTimeout(timer);
                this.listeners.delete(check);
            };
            const check = () => {
                const match = this.text.match(pattern);
                if (match) {
                    done();
                    return resolve(match);
                }
                if (!this.alive) {
                    done();
                    reject(new Error(`${this.script} exited without printing ${pattern}:\n${this.text.slice(-2000)}`));
                }
            };
            const timer = setTimeout(() => {
                done();
                reject(new Error(`${this.script} printed no ${pattern} within ${timeoutMs} ms:\n${this.text.slice(-2000)}`));
            }, timeoutMs);
            this.listeners.add(check);
            check();
        });
    }

    /** Forgets the output so far, so the next `waitFor` sees only what comes after. */
    clearOutput(): void {
        this.text = '';
    }

    write(line: string): void {
        if (this.alive) this.child.stdin!.write(line + '\n');
    }

    /** Asks with `signal`, then kills after `graceMs`. */
    async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<void> {
        if (!this.alive) return;
        this.child.kill(signal);
        const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
        await this.exited;
        clearTimeout(timer);
    }

    kill(): Promise<unknown> {
        if (this.alive) this.child.kill('SIGKILL');
        return this.exited;
    }
}

/** Runs a program to its end (CLI commands such as `audit`); killed after `timeoutMs`. */
export async function runToEnd(script: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<{ code: number | string, output: string }> {
    const program = new ChildProgram(script, args, env, KEPT_COMMAND_OUTPUT);
    // kill() resolves when the program has exited, which the `await program.exited` below waits for anyway.
    const timer = setTimeout(() => void program.kill(), timeoutMs);
    const code = await program.exited;
    clearTimeout(timer);
    return { code, output: program.output() };
}
