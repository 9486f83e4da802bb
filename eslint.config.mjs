// Type-aware lint for mistakes the compiler lets through: a promise nobody awaits (its rejection is lost, or it
// races the next statement) and a promise handed to something that ignores it (an event listener, a void
// callback). No style rules: formatting is not what this guards.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';

export default tseslint.config(
    { ignores: ['node_modules/', '**/dist/', '**/*.js', '**/*.mjs', '**/*.cjs'] },
    {
        files: ['server/**/*.ts', 'peer/**/*.ts', 'shared/**/*.ts', 'testing/**/*.ts', 'examples/**/*.ts', 'tests/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
        languageOptions: {
            parser: tseslint.parser,
            parserOptions: { projectService: true, tsconfigRootDir: dirname(fileURLToPath(import.meta.url)) },
        },
        plugins: { '@typescript-eslint': tseslint.plugin },
        // Directives for rules of other tools' sets (no-require-imports) are not ours to flag.
        linterOptions: { reportUnusedDisableDirectives: 'off' },
        rules: {
            '@typescript-eslint/no-floating-promises': 'error',
            '@typescript-eslint/no-misused-promises': 'error',
        },
    },
);
