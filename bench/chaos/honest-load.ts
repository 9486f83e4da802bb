import { ChildProgram } from './child-process';

export interface PhaseFigures {
    calls: number;
    /** ok ÷ calls; null without calls. */
    successRate: number | null;
    p50: number | null;
    p99: number | null;
    errors: Record<string, number>;
}

/** The honest traffic during an attack: two SDK peers calling each other (honest-peers.ts, in its own process). */
export class HonestLoad {
    protected constructor(protected program: ChildProgram) {
    }

    static async start(url: string, options: { callTimeoutMs: number, pauseMs: number, startTimeoutMs: number }): Promise<HonestLoad> {
        const program = new ChildProgram('bench/chaos/honest-peers.ts', [url, String(options.callTimeoutMs), String(options.pauseMs)]);
        try {
            await program.waitFor(/\{"ready":true\}/, options.startTimeoutMs);
        } catch (error) {
            await program.kill();
            throw error;
        }
        return new HonestLoad(program);
    }

    /** Calls started from now on count towards `name`. */
    phase(name: string): void {
        this.program.write(`phase ${name}`);
    }

    /** Figures of each phase so far. */
    async report(timeoutMs = 10_000): Promise<Record<string, PhaseFigures>> {
        this.program.clearOutput();
        this.program.write('report');
        const [line] = await this.program.waitFor(/\{"report":.*\}\n/, timeoutMs);
        return JSON.parse(line).report;
    }

    async stop(): Promise<void> {
        this.program.child.stdin!.end();
        const timer = setTimeout(() => void this.program.kill(), 4000);
        await this.program.exited;
        clearTimeout(timer);
    }
}
