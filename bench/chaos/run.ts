import { readdirSync } from 'fs';
import { join } from 'path';
import { markdown, SectionOutcome, strictFailures, writeResults } from './report';
import { ChaosSection } from './section';

const usage = `Usage: npm run chaos [-- --quick] [-- --only R3] [-- --strict]

Attacks a broker started from the real CLI in a process of its own (loopback, free port) and reports, section by
section, whether it stayed up, served honest peers, and refused and recorded what it must refuse. Prints a table and
writes bench/results/<date>.chaos.{json,md}.
  --quick   small counts, seconds per section (CI: checks that every section runs, never its figures);
            results go to the temp directory
  --only X  only the sections whose id or title contains X (results to the temp directory too)
  --strict  exit 1 if any attack hung or crashed the broker or any spoofing attempt succeeded
  --label T a line for the results saying what was measured (e.g. "before the frame gate")
Without --strict the run exits 0 whenever the harness ran, whatever the broker did: the table says what happened.`;

/** Every file in sections/ that exports `section`, in file name order (r3-…, r4-…). */
function loadSections(): ChaosSection[] {
    const directory = join(__dirname, 'sections');
    return readdirSync(directory)
        .filter(name => /\.ts$/.test(name) && !name.endsWith('.d.ts'))
        .sort()
        .map(name => require(join(directory, name)).section as ChaosSection | undefined)
        .filter((section): section is ChaosSection => !!section);
}

async function main(): Promise<void> {
    const args = process.argv.slice(2);
    if (args.includes('--help')) return void console.log(usage);
    const quick = args.includes('--quick');
    const strict = args.includes('--strict');
    const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
    const label = args.includes('--label') ? args[args.indexOf('--label') + 1] : undefined;
    const sections = loadSections().filter(s => !only || s.id.toLowerCase() === only.toLowerCase() || s.title.toLowerCase().includes(only.toLowerCase()));
    if (!sections.length) {
        console.error(`No section matches --only ${only}.`);
        process.exit(2);
    }

    // Each section bounds its own work; this is the last resort against a harness bug that would otherwise hang CI.
    const runLimitMs = (quick ? 3 : 15) * 60_000;
    setTimeout(() => {
        console.error(`The chaos run did not finish within ${runLimitMs / 60_000} min; stopping (every broker it started is killed).`);
        process.exit(1);
    }, runLimitMs).unref();

    const outcomes: SectionOutcome[] = [];
    for (const section of sections) {
        console.log(`… ${section.id} ${section.title}`);
        const started = performance.now();
        try {
            const result = await section.run({ quick, log: line => console.log(`  ${line}`) });
            outcomes.push({ section, result, seconds: (performance.now() - started) / 1000 });
        } catch (error) {
            outcomes.push({ section, error: error instanceof Error ? error.stack ?? error.message : String(error), seconds: (performance.now() - started) / 1000 });
        }
    }

    const date = new Date().toISOString().slice(0, 19).replace(/:/g, '-');
    const table = markdown(outcomes, date, quick, label);
    console.log('\n' + table);
    console.log(`Results: ${writeResults(outcomes, table, date, { quick, only, label })}.{json,md}`);

    const broken = outcomes.filter(outcome => outcome.error);
    if (broken.length) {
        console.error(`${broken.length} section(s) did not run:\n${broken.map(o => `${o.section.id}: ${o.error}`).join('\n')}`);
        process.exit(1);
    }
    if (strict && strictFailures(outcomes).length) process.exit(1);
    process.exit(0);
}

void main();
