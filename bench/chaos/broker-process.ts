import { readFileSync } from 'fs';
import { request } from 'http';
import { ChildProgram, runToEnd } from './child-process';

const CLI = 'server/main.ts';

export type BrokerHealth = 'up' | 'hung' | 'died';

/**
 * The broker as operators run it — the real CLI (`server/main.ts start`) in a process of its own, on loopback with a
 * free port — so a hostile frame that hangs or crashes it cannot take the harness along.
 */
export class BrokerProcess {
    protected constructor(readonly program: ChildProgram, readonly url: string, readonly port: number, readonly env: Record<string, string>) {
    }

    /**
     * @param database a SQLite file (the audit trail can then be read with the `audit` command) or `:memory:`
     * @param flags more flags of `start`, e.g. `['--auth', 'token']`; `--port` among them replaces the free port
     * @param nodeArgs more options of node for the broker process (e.g. a probe to `-r`)
     */
    static async start(database: string, flags: string[] = [], startTimeoutMs = 30_000, nodeArgs: string[] = []): Promise<BrokerProcess> {
        const env = { SWITCHBOARD_DATABASE: database };
        const port = flags.includes('--port') ? [] : ['--port', '0'];
        const program = new ChildProgram(CLI, ['start', '--host', '127.0.0.1', ...port, '--database', database, ...flags], env, undefined, nodeArgs);
        try {
            const [, url, port] = await program.waitFor(/listening on (ws:\/\/127\.0\.0\.1:(\d+))/, startTimeoutMs);
            return new BrokerProcess(program, url, Number(port), env);
        } catch (error) {
            await program.kill();
            throw error;
        }
    }

    /** Runs another command of the CLI (`token:create`, `audit`, …) on the same database. */
    static command(database: string, args: string[], timeoutMs = 30_000): Promise<{ code: number | string, output: string }> {
        return runToEnd(CLI, args, { SWITCHBOARD_DATABASE: database }, timeoutMs);
    }

    get pid(): number {
        return this.program.pid;
    }

    /** Whether GET /health answers within `timeoutMs`: a broker whose event loop is stuck cannot. */
    async health(timeoutMs: number): Promise<BrokerHealth> {
        if (!this.program.alive) return 'died';
        const answered = await new Promise<boolean>(resolve => {
            const call = request({ host: '127.0.0.1', port: this.port, path: '/health', timeout: timeoutMs, agent: false }, response => {
                response.resume();
                response.on('end', () => resolve(response.statusCode === 200));
            });
            call.on('timeout', () => call.destroy());
            call.on('error', () => resolve(false));
            call.end();
        });
        if (answered) return 'up';
        return this.program.alive ? 'hung' : 'died';
    }

    /** Resident memory of the broker process in bytes (from /proc: it works while the broker hangs), or null. */
    rss(): number | null {
        try {
            const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
            return match ? Number(match[1]) * 1024 : null;
        } catch {
            return null;
        }
    }

    /** SIGTERM (its own clean shutdown); a broker that does not stop in time is killed. */
    stop(graceMs = 5000): Promise<void> {
        return this.program.stop('SIGTERM', graceMs);
    }

    async kill(): Promise<void> {
        await this.program.kill();
    }
}
