import { readFileSync, writeFileSync } from 'fs';
import { Session } from 'inspector';
import { basename, relative } from 'path';

/** The parts of a V8 `.cpuprofile` this file reads. */
interface CpuProfile {
    nodes: { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }[];
    samples: number[];
    timeDeltas: number[];
}

export interface SelfTime {
    /** `function (file:line)`, paths relative to the project. */
    location: string;
    milliseconds: number;
    /** Share of the busy (non-idle) time. */
    percent: number;
}

/**
 * Profiles this process (the harness: the benchmark's peers and clients) with the inspector, one profile per
 * scenario, the way `--cpu-prof` profiles each server process.
 */
export class HarnessProfiler {
    protected session = new Session();

    start(): Promise<void> {
        this.session.connect();
        return new Promise((resolve, reject) => this.session.post('Profiler.enable', () => this.session.post('Profiler.start', error => error ? reject(error) : resolve())));
    }

    /** Stops profiling and writes the profile to `path`. */
    stop(path: string): Promise<void> {
        return new Promise((resolve, reject) => this.session.post('Profiler.stop', (error, result) => {
            this.session.disconnect();
            if (error) return reject(error);
            writeFileSync(path, JSON.stringify(result.profile));
            resolve();
        }));
    }
}

/** The functions that spent the most time on the CPU themselves (not in their callees). */
export function topSelfTime(path: string, count: number, root = process.cwd()): { busyMilliseconds: number, top: SelfTime[] } {
    const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
    const location = new Map<number, string>();
    for (const { id, callFrame } of profile.nodes) {
        const file = callFrame.url ? relative(root, callFrame.url.replace(/^file:\/\//, '')) : '';
        const name = callFrame.functionName || '(anonymous)';
        location.set(id, file ? `${name} (${file}:${callFrame.lineNumber + 1})` : name);
    }
    // Time inside the inspector's own calls is the profiler starting, not the program.
    const parent = new Map<number, number>();
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
    const inspector = new Set(profile.nodes.filter(n => n.callFrame.url === 'node:inspector').map(n => n.id));
    const underInspector = (id: number): boolean => {
        for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) if (inspector.has(at)) return true;
        return false;
    };
    const micros = new Map<string, number>();
    profile.samples.forEach((node, i) => {
        if (underInspector(node)) return;
        const where = location.get(node)!;
        micros.set(where, (micros.get(where) ?? 0) + (profile.timeDeltas[i] ?? 0));
    });
    micros.delete('(idle)');
    const busy = [...micros.values()].reduce((sum, value) => sum + value, 0);
    const top = [...micros.entries()].sort((a, b) => b[1] - a[1]).slice(0, count)
        .map(([where, value]) => ({ location: where, milliseconds: value / 1000, percent: busy ? 100 * value / busy : 0 }));
    return { busyMilliseconds: busy / 1000, top };
}

/** A markdown table of `topSelfTime`. */
export function selfTimeTable(path: string, count: number): string {
    const { busyMilliseconds, top } = topSelfTime(path, count);
    const lines = [`${basename(path)}: ${busyMilliseconds.toFixed(0)} ms on the CPU`, '', '| self ms | % | function |', '|---:|---:|---|'];
    for (const row of top) lines.push(`| ${row.milliseconds.toFixed(0)} | ${row.percent.toFixed(1)} | \`${row.location}\` |`);
    return lines.join('\n');
}
