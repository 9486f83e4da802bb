import { ChildProcess, spawn } from 'child_process';
import { join } from 'path';

const root = join(__dirname, '..');

export interface Run {
    child: ChildProcess;
    output: () => string;
    exit: Promise<number>;
    /** Types a line on the program's standard input. */
    type(line: string): void;
    /**
     * Resolves with the first match of `pattern` in the output after `fromOffset` (default: all output); rejects
     * with the output when the program exits without it, or after `timeoutMs` if given. Without `timeoutMs` it
     * waits as long as the program runs (the test's own timeout bounds it): a busy machine only makes it slower.
     */
    waitFor(pattern: RegExp, timeoutMs?: number, fromOffset?: number): Promise<RegExpMatchArray>;
}

/**
 * Runs one of the project's TypeScript programs as `npm run …` does (ts-node, transpile-only), with the compiled
 * output cached across processes (tests/ts-node-cached.js).
 */
export function runProgram(script: string, args: string[], env: Record<string, string> = {}): Run {
    const child = spawn(process.execPath, ['--enable-source-maps', '-r', join(__dirname, 'ts-node-cached.js'), script, ...args], {
        cwd: root,
        env: { ...process.env, FORCE_COLOR: '0', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', chunk => output += chunk);
    child.stderr!.on('data', chunk => output += chunk);
    const exit = new Promise<number>(resolve => child.on('exit', code => resolve(code ?? -1)));

    const waitFor = (pattern: RegExp, timeoutMs?: number, fromOffset = 0) => new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = () => {
            const match = output.slice(fromOffset).match(pattern);
            if (!match) return false;
            cleanup();
            resolve(match);
            return true;
        };
        const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
            cleanup();
            reject(new Error(`no ${pattern} in the output of ${script} ${args.join(' ')}:\n${output}`));
        }, timeoutMs);
        const cleanup = () => {
            clearTimeout(timer);
            child.stdout!.off('data', check);
            child.stderr!.off('data', check);
        };
        if (check()) return;
        child.stdout!.on('data', check);
        child.stderr!.on('data', check);
        void exit.then(() => {  // `exit` never rejects
            if (check()) return;
            cleanup();
            reject(new Error(`${script} exited without ${pattern}:\n${output}`));
        });
    });

    return { child, output: () => output, exit, type: line => child.stdin!.write(line + '\n'), waitFor };
}
