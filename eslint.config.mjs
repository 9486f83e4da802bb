// Type-aware lint for mistakes the compiler lets through: a promise nobody awaits (its rejection is lost, or it
// races the next statement) and a promise handed to something that ignores it (an event listener, a void
// callback). And the shape of the house: no import cycles, and each package reaches another only by its name and
// public entry (DESIGN: shared ← server, shared ← peer, never server ↔ peer; the test kit on top). No style rules:
// formatting is not what this guards.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const root = dirname(fileURLToPath(import.meta.url));

/** The repository's top-level folders: a relative import that climbs into one of them leaves its own package. */
const folders = 'shared|peer|server|testing|tests|bench|examples|scripts';

/** `no-restricted-imports` patterns: a relative import into any of `targets`, and package names matching `names`. */
function boundary(message, { targets = folders, names } = {}) {
    const patterns = [{ regex: `^(\\.\\./)+(${targets})(/|$)`, message }];
    if (names) patterns.push({ regex: names, message });
    return ['error', { patterns }];
}

/** A deep import of a package: only the entries its exports map lists exist once it is installed. */
const deepImport = {
    regex: '^@switchboard/(?!protocol/internal(/sqlite)?$|peer/(internal|core|features/[\\w-]+)$)[^/]+/.+',
    message: 'Only a package\'s entries exist once it is installed: @switchboard/<name>, @switchboard/peer/core and /features/<name>, or @switchboard/protocol/internal (/sqlite) and @switchboard/peer/internal for Switchboard\'s own packages.',
};

/** Package boundaries by folder: which other packages each may import (by name), and nothing else outside itself. */
function packageRules(files, message, names) {
    const [, { patterns }] = boundary(message, { names });
    return { files, rules: { 'no-restricted-imports': ['error', { patterns: [...patterns, deepImport] }] } };
}

export default tseslint.config(
    { ignores: ['node_modules/', '**/dist/', '**/*.js', '**/*.mjs', '**/*.cjs'] },
    {
        files: ['server/**/*.ts', 'peer/**/*.ts', 'shared/**/*.ts', 'testing/**/*.ts', 'examples/**/*.ts', 'tests/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
        languageOptions: {
            parser: tseslint.parser,
            parserOptions: { projectService: true, tsconfigRootDir: root },
        },
        plugins: { '@typescript-eslint': tseslint.plugin, 'import-x': importX },
        settings: {
            // Without these, no-cycle reads no TypeScript file it follows, and finds nothing.
            'import-x/extensions': ['.ts'],
            'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
            // tsconfig.json's `paths`: `@switchboard/peer` is peer/index.ts, as for tsc, ts-node and jest.
            'import-x/resolver-next': [createTypeScriptImportResolver({ project: `${root}/tsconfig.json` })],
        },
        // Directives for rules of other tools' sets (no-require-imports) are not ours to flag.
        linterOptions: { reportUnusedDisableDirectives: 'off' },
        rules: {
            '@typescript-eslint/no-floating-promises': 'error',
            '@typescript-eslint/no-misused-promises': 'error',
            // A cycle makes load order decide whether a class is defined yet; type-only imports cannot cause that.
            'import-x/no-cycle': ['error', { ignoreExternal: true, allowUnsafeDynamicCyclicDependency: false }],
        },
    },
    packageRules(['shared/**/*.ts'],
        'The protocol is the bottom package: it imports neither the broker, the SDK nor the test kit (nor itself by name).',
        '^@switchboard/'),
    packageRules(['server/**/*.ts'],
        'The broker imports only the protocol (@switchboard/protocol, or /internal): never the SDK or the test kit.',
        '^@switchboard/(peer|testing|broker)(/|$)'),
    packageRules(['peer/**/*.ts'],
        'The SDK imports only the protocol (@switchboard/protocol, or /internal): never the broker or the test kit.',
        '^@switchboard/(broker|testing|peer)(/|$)'),
    packageRules(['testing/**/*.ts'],
        'The test kit imports the other packages by name (@switchboard/peer, @switchboard/broker, @switchboard/protocol).',
        '^@switchboard/testing(/|$)'),
    {
        files: ['examples/**/*.ts'],
        rules: {
            'no-restricted-imports': ['error', { patterns: [
                // Each example is a folder of examples/: two levels up is the repository.
                { regex: '^(\\.\\./){2,}', message: 'Examples use Switchboard as an app does: import @switchboard/<package>, never a source file.' },
                { regex: '^@switchboard/(?!peer/(core|features/[\\w-]+)$)[^/]+/.+', message: 'Examples use Switchboard as an app does: a public entry (@switchboard/<package>, @switchboard/peer/core, @switchboard/peer/features/<name>) only.' },
            ] }],
        },
    },
    {
        // The harnesses may use the test fixtures' tools the other way round, never both: bench imports nothing of tests/.
        files: ['bench/**/*.ts'],
        rules: { 'no-restricted-imports': boundary('bench/ imports nothing from tests/ (tests may use bench/\'s tools): move a shared helper to bench/.', { targets: 'tests' }) },
    },
);
