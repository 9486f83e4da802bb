import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { dirname, join, relative } from 'path';
import * as ts from 'typescript';

/**
 * README.md's TypeScript compiles as it stands. Every ```ts block is typechecked against the packages (their sources,
 * by package name, as tsconfig.json's `paths` give them), each as a module: a block whose paragraph names a file
 * (`src/greeter.ts`) is written there, so the README's own relative imports resolve. A block with `…` in it is a
 * sketch of calls, not a program: it is not compiled, but it too must import by package name.
 */
const root = join(__dirname, '..');
const folder = join(root, 'var', 'readme-snippets');

interface Snippet {
    file: string;
    body: string;
    /** The README line of the block's first line of code. */
    line: number;
    sketch: boolean;
}

function snippets(): Snippet[] {
    const text = readFileSync(join(root, 'README.md'), 'utf8');
    const found: Snippet[] = [];
    const block = /^```ts\n([\s\S]*?)^```/gm;
    let match: RegExpExecArray | null;
    let previousEnd = 0;
    while ((match = block.exec(text))) {
        const before = text.slice(previousEnd, match.index).trim().split('\n\n').pop() ?? '';
        previousEnd = match.index + match[0].length;
        const named = [...before.matchAll(/`((?:src|test)\/[\w./-]+\.ts)`/g)].pop()?.[1];
        const line = text.slice(0, match.index).split('\n').length + 1;
        found.push({ file: named ?? `snippets/line-${line}.ts`, body: match[1], line, sketch: match[1].includes('…') });
    }
    return found;
}

describe('README.md\'s TypeScript', () => {
    const all = snippets();
    jest.setTimeout(180000);
    afterAll(() => rmSync(folder, { recursive: true, force: true }));

    it('imports our code by package name (@switchboard/…), never by a path into this repository', () => {
        const repositoryPaths = all.flatMap(snippet => [...snippet.body.matchAll(/from '(\.\.?\/(?:server|peer|shared|testing)\b[^']*)'/g)]
            .map(found => `README.md:${snippet.line}: import from '${found[1]}'`));
        expect(repositoryPaths).toEqual([]);
    });

    it('compiles: every block that is not a sketch typechecks against the packages', () => {
        rmSync(folder, { recursive: true, force: true });
        const compiled = all.filter(snippet => !snippet.sketch);
        expect(compiled.length).toBeGreaterThanOrEqual(8);
        for (const snippet of compiled) {
            mkdirSync(dirname(join(folder, snippet.file)), { recursive: true });
            // `export {}`: a block without imports is still a module of its own.
            writeFileSync(join(folder, snippet.file), `${snippet.body}\nexport {};\n`);
        }
        const config = ts.parseJsonConfigFileContent(ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile).config, ts.sys, root);
        // ES2022 modules: the README awaits at the top level, as an app's ES module would.
        const options: ts.CompilerOptions = { ...config.options, noEmit: true, module: ts.ModuleKind.ES2022, moduleResolution: ts.ModuleResolutionKind.Bundler, sourceMap: false };
        const program = ts.createProgram(compiled.map(snippet => join(folder, snippet.file)), options);
        const errors = ts.getPreEmitDiagnostics(program)
            .filter(diagnostic => diagnostic.file?.fileName.startsWith(folder))
            .map(diagnostic => {
                const snippet = compiled.find(candidate => join(folder, candidate.file) === diagnostic.file!.fileName)!;
                const { line } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
                return `README.md:${snippet.line + line} (${relative(folder, diagnostic.file!.fileName)}): ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
            });
        expect(errors).toEqual([]);
    });
});
