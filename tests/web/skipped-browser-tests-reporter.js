/**
 * Repeats, under the summary of a run, the warning of browser tests skipped for want of Chromium
 * (`describeInBrowser` in tests/web/browser.ts). In a run of every file jest prints a file's console output amid the
 * results of the others, hundreds of lines above the summary, where nobody reads it. (Under `CI=true` the browser
 * tests fail instead.)
 */
'use strict';

class SkippedBrowserTestsReporter {
    constructor() {
        this.warnings = new Set();
    }

    onTestResult(test, result) {
        for (const entry of result.console ?? []) {
            if (entry.type === 'warn' && entry.message.includes('Chromium not found')) this.warnings.add(entry.message.trim());
        }
    }

    onRunComplete() {
        if (this.warnings.size) process.stderr.write(`\n${[...this.warnings].join('\n\n')}\n\n`);
    }

    getLastError() {
        return undefined;
    }
}

module.exports = SkippedBrowserTestsReporter;
