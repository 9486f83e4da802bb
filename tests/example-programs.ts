import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Resources } from './helpers';
import { Run, runProgram } from './processes';

export interface ExamplePrograms {
    readonly resources: Resources;
    /** This test's temporary folder (storage files, shared files), removed after it. */
    readonly directory: string;
    /** Starts an example program as people run it; killed after the test if it is still running. */
    start(script: string, args: string[]): Run;
}

/**
 * For a describe block that runs the example programs: a temporary folder per test and the programs it started,
 * both cleaned up after each test.
 */
export function usesExamplePrograms(folderPrefix: string): ExamplePrograms {
    const resources = new Resources();
    let directory = '';
    beforeEach(() => {
        directory = mkdtempSync(join(tmpdir(), folderPrefix));
        resources.add(directory, d => rmSync(d, { recursive: true, force: true }));
    });
    afterEach(() => resources.closeAll());
    return {
        resources,
        get directory() {
            return directory;
        },
        start(script: string, args: string[]): Run {
            const run = runProgram(script, args);
            resources.add(run, r => {
                if (r.child.exitCode === null) r.child.kill('SIGKILL');
            });
            return run;
        },
    };
}
