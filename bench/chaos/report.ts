import { mkdirSync, writeFileSync } from 'fs';
import { cpus, tmpdir, totalmem } from 'os';
import { join } from 'path';
import { ChaosSection, SectionResult } from './section';

export interface SectionOutcome {
    section: ChaosSection;
    result?: SectionResult;
    /** The section itself could not run (a harness problem, not a broker verdict). */
    error?: string;
    seconds: number;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function machine(): string {
    return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

/** The run as Markdown: one table per section, then what failed. */
export function markdown(outcomes: SectionOutcome[], date: string, quick: boolean, label?: string): string {
    const lines = [`Chaos run ${date}${quick ? ' (--quick: small counts; checks that it runs, not figures)' : ''} on ${machine()}.`];
    if (label) lines.push('', `Measured: ${label}.`);
    for (const { section, result, error, seconds } of outcomes) {
        lines.push('', `### ${section.id} ${section.title} (${seconds.toFixed(0)} s)`, '');
        if (!result) {
            lines.push(`Did not run: ${error}`);
            continue;
        }
        lines.push(`| ${result.columns.map(cell).join(' | ')} |`, `|${result.columns.map(() => '---').join('|')}|`);
        for (const row of result.rows) lines.push(`| ${result.columns.map(column => cell(row.cells[column] ?? '')).join(' | ')} |`);
        if (result.notes?.length) lines.push('', ...result.notes.map(note => `- ${note}`));
    }
    const failures = strictFailures(outcomes);
    lines.push('', failures.length ? `**${failures.length} check(s) failed** (\`--strict\` exits 1):` : 'No broker hung or died, no spoofing attempt succeeded.');
    for (const failure of failures) lines.push(`- ${failure}`);
    return lines.join('\n') + '\n';
}

export function strictFailures(outcomes: SectionOutcome[]): string[] {
    const failures: string[] = [];
    for (const { section, result } of outcomes) {
        for (const row of result?.rows ?? []) if (row.failed) failures.push(`${section.id}: ${row.failed.why}`);
    }
    return failures;
}

/**
 * Writes `<date>.chaos.{json,md}`: full runs to bench/results (the README quotes them, as it does the bench's),
 * quick and partial runs to the temp directory. @returns the path without extension
 */
export function writeResults(outcomes: SectionOutcome[], table: string, date: string, options: { quick: boolean, only?: string, label?: string }): string {
    const directory = options.quick || options.only ? join(tmpdir(), 'switchboard-chaos') : join(__dirname, '..', 'results');
    mkdirSync(directory, { recursive: true });
    const base = join(directory, `${date}.chaos`);
    const sections = outcomes.map(({ section, result, error, seconds }) => ({ id: section.id, title: section.title, seconds, error, ...result }));
    writeFileSync(`${base}.json`, JSON.stringify({ date, machine: machine(), label: options.label, quick: options.quick, only: options.only, sections }, null, 2));
    writeFileSync(`${base}.md`, table);
    return base;
}

// ---- cell formatting shared by the sections ------------------------------------------------------------------------

export function ms(value: number | null | undefined): string {
    return value === null || value === undefined ? '—' : `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ms`;
}

export function percent(value: number | null | undefined): string {
    return value === null || value === undefined ? '—' : `${(value * 100).toFixed(value === 1 ? 0 : 1)}%`;
}

export function mebibytes(bytes: number | null | undefined): string {
    return bytes === null || bytes === undefined ? '—' : `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

/** `a ×3, b ×1`, most frequent first, the first `shown` of them; `none` when empty. */
export function counts(map: Map<string, number> | Record<string, number>, shown = 6): string {
    const entries = (map instanceof Map ? [...map] : Object.entries(map)).sort((a, b) => b[1] - a[1]);
    if (!entries.length) return 'none';
    const rest = entries.slice(shown).reduce((sum, [, count]) => sum + count, 0);
    return entries.slice(0, shown).map(([key, count]) => `${key} ×${count}`).join(', ') + (rest ? `, ${entries.length - shown} other kinds ×${rest}` : '');
}
