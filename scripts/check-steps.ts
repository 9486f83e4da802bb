import { spawnSync } from 'child_process';

/**
 * What pack-check and browser-check share: numbered steps, a failure that names its step, and commands run as a
 * user's shell runs them.
 */
export class StepFailed extends Error {
}

/** Numbered steps of one check, printed as they start, so a failure names the step it happened in. */
export class CheckSteps {
    number = 0;

    constructor(readonly checkName: string) {
    }

    step(title: string): void {
        console.log(`\n── ${this.checkName} ${++this.number}: ${title}`);
    }
}

export function fail(problem: string, output = ''): never {
    throw new StepFailed(`${problem}${output ? `\n${output.trim()}` : ''}`);
}

/**
 * The environment of a user's shell: none of the npm_* settings `npm run …` passes down (they would point npm at this
 * repository), nor our ts-node and colour settings.
 */
export const userEnvironment: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) =>
    !/^(npm_|INIT_CWD$|NODE_OPTIONS$|TS_NODE_|FORCE_COLOR$|SWITCHBOARD_)/.test(name)));

/** Runs a command line as a shell would; fails the step with its output when it does not exit 0. */
export function run(commandLine: string, cwd: string): string {
    console.log(`$ ${commandLine}`);
    const result = spawnSync('sh', ['-c', commandLine], { cwd, env: userEnvironment, encoding: 'utf8', maxBuffer: 64 << 20 });
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
    if (result.status !== 0) fail(`\`${commandLine}\` exited with ${result.status ?? result.signal}`, output);
    return output;
}
