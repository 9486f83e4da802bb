import { spawn } from 'child_process';
import { existsSync } from 'fs';
import { join } from 'path';
import type { Measurement } from './scenarios';

/** The compiled broker (`npm run build`): what `npm start` runs, without ts-node and TypeScript in its memory. */
const COMPILED_BROKER = join(__dirname, '..', 'server', 'dist', 'app.js');
/** V8 has handed back the young generation it grew while starting (its memory reducer runs after a while idle). */
const AT_REST_YOUNG_BYTES = 4 * 2 ** 20;

interface Sample {
    rss: number;
    heapUsed: number;
    young: number;
    modules: number;
}

/**
 * The broker's own program: starts a broker with no peers, and answers each line on stdin with its memory after a
 * garbage collection; exits when stdin closes.
 */
const PROGRAM = `
const v8 = require('v8');
require(process.argv[1]).startBroker({ port: 0, database: ':memory:', logLevel: 'error' }).then(broker => {
    process.stdin.on('data', () => {
        global.gc();
        const memory = process.memoryUsage();
        const young = v8.getHeapSpaceStatistics().find(space => space.space_name === 'new_space');
        process.stdout.write(JSON.stringify({ rss: memory.rss, heapUsed: memory.heapUsed, young: young ? young.space_size : 0, modules: Object.keys(require.cache).length }) + '\\n');
    });
    process.stdin.on('end', () => broker.close().then(() => process.exit(0)));
    process.stdout.write('ready\\n');
});`;

/**
 * A fresh broker at rest (issue 23), from the compiled package in its own process: its RSS after a garbage collection
 * two seconds after it started, and again once V8 has returned the young generation it grew while starting (up to a
 * minute idle; that 32 MiB is most of the difference), with the heap used and the modules loaded.
 */
export async function brokerAtRest(): Promise<Measurement[]> {
    if (!existsSync(COMPILED_BROKER)) throw new Error(`${COMPILED_BROKER} is missing: run npm run build first (this scenario measures the compiled broker).`);
    const child = spawn(process.execPath, ['--expose-gc', '-e', PROGRAM, COMPILED_BROKER], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let waiting: (() => void) | undefined;
    let rest = '';
    child.stdout!.on('data', chunk => {
        rest += chunk;
        let newline: number;
        while ((newline = rest.indexOf('\n')) >= 0) {
            lines.push(rest.slice(0, newline));
            rest = rest.slice(newline + 1);
            waiting?.();
        }
    });
    const exited = new Promise<never>((resolve, reject) => child.once('exit', code => reject(new Error(`the compiled broker exited with ${code}`))));
    exited.catch(() => undefined);
    const line = async () => {
        while (!lines.length) await Promise.race([new Promise<void>(resolve => waiting = resolve), exited]);
        return lines.shift()!;
    };
    const sample = async (): Promise<Sample> => {
        child.stdin!.write('sample\n');
        return JSON.parse(await line());
    };
    const pause = (milliseconds: number) => new Promise(resolve => setTimeout(resolve, milliseconds));
    try {
        if (await line() !== 'ready') throw new Error('the compiled broker did not start');
        const started = performance.now();
        await pause(2_000);
        const fresh = await sample();
        // At rest: the young generation handed back, and the RSS steady (its pages are freed a moment later).
        let atRest = fresh;
        let previous: Sample | undefined;
        while ((atRest.young > AT_REST_YOUNG_BYTES || !previous || previous.young > AT_REST_YOUNG_BYTES || Math.abs(previous.rss - atRest.rss) > 2 ** 20) && performance.now() - started < 60_000) {
            await pause(2_000);
            previous = atRest;
            atRest = await sample();
        }
        const scenario = 'broker at rest (compiled, no peers)';
        const mebibytes = (bytes: number) => bytes / 2 ** 20;
        return [
            { scenario, system: 'Switchboard', metric: 'RSS 2 s after start (after GC)', unit: 'MiB', value: mebibytes(fresh.rss), better: 'lower' },
            { scenario, system: 'Switchboard', metric: 'RSS at rest', unit: 'MiB', value: mebibytes(atRest.rss), better: 'lower', note: atRest.young > AT_REST_YOUNG_BYTES ? `${mebibytes(atRest.rss).toFixed(1)} MiB (young generation still ${mebibytes(atRest.young).toFixed(0)} MiB after 60 s)` : undefined },
            { scenario, system: 'Switchboard', metric: 'heap used at rest', unit: 'MiB', value: mebibytes(atRest.heapUsed), better: 'lower' },
            { scenario, system: 'Switchboard', metric: 'modules loaded', unit: 'modules', value: atRest.modules, better: 'lower' },
            { scenario, system: 'Switchboard', metric: 'time until at rest', unit: 's', value: (performance.now() - started) / 1000, better: 'lower' },
        ];
    } finally {
        child.stdin!.end();
        await exited.catch(() => undefined);
    }
}
