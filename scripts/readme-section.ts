import { readFileSync } from 'fs';
import { join } from 'path';

/** A step of a README section: a shell block's lines, or a file the section shows. */
export type ReadmeStep = { commands: string[] } | { path: string, content: string };

/**
 * The fenced blocks of README.md's section `heading` (`## …`, up to the next `## `), in order: a `sh` block is
 * commands (comment lines left out); any other block is a file, named by the last `path` in backticks with one of
 * `extensions` in the paragraph before it. The checks that follow a section step by step (pack-check, browser-check)
 * read it here, so the README cannot drift from what they run.
 */
export function readReadmeSection(repository: string, heading: string, extensions: string[]): ReadmeStep[] {
    const text = readFileSync(join(repository, 'README.md'), 'utf8');
    const start = text.indexOf(`\n${heading}\n`);
    if (start < 0) throw new Error(`README.md has no "${heading}" section`);
    const end = text.indexOf('\n## ', start + 1);
    const section = text.slice(start, end < 0 ? undefined : end);
    const fileName = new RegExp(`\`([\\w./-]+\\.(?:${extensions.join('|')}))\``, 'g');
    const steps: ReadmeStep[] = [];
    const block = /```(\w*)\n([\s\S]*?)```/g;
    let match: RegExpExecArray | null;
    let previousEnd = 0;
    while ((match = block.exec(section))) {
        const [, language, body] = match;
        const before = section.slice(previousEnd, match.index).trim().split('\n\n').pop() ?? '';
        previousEnd = match.index + match[0].length;
        if (language === 'sh') {
            steps.push({ commands: body.split('\n').map(line => line.trim()).filter(line => line && !line.startsWith('#')) });
            continue;
        }
        const path = [...before.matchAll(fileName)][0]?.[1];
        if (!path) throw new Error(`README.md: no file name (\`path\`) in the paragraph before a ${language} block:\n${before}`);
        steps.push({ path, content: body });
    }
    return steps;
}
