/** Tests start real brokers and peers over loopback WebSockets; they run in band (2-core machines). */
module.exports = {
    testEnvironment: 'node',
    roots: ['<rootDir>/tests'],
    testMatch: ['**/*.test.ts'],
    // The second repeats a skipped browser test's warning under the summary, where a full run shows it.
    reporters: ['default', '<rootDir>/tests/web/skipped-browser-tests-reporter.js'],
    transform: {
        // Compiled file by file, without type checks (`npm run typecheck` does those, before the tests in CI): with a
        // cold cache, type checking took about as much CPU as the tests of a file did.
        '^.+\\.ts$': ['ts-jest', { tsconfig: { isolatedModules: true } }],
    },
    // The packages' names resolve to their sources, the same files the relative imports reach (one module instance
    // each), as tsconfig.json's `paths` do for tsc and ts-node: tests never run a stale build.
    moduleNameMapper: {
        '^@switchboard/protocol(/.*)?$': '<rootDir>/shared$1',
        '^@switchboard/peer(/.*)?$': '<rootDir>/peer$1',
        '^@switchboard/broker(/.*)?$': '<rootDir>/server$1',
        '^@switchboard/testing(/.*)?$': '<rootDir>/testing$1',
    },
    testTimeout: 30000,
};
