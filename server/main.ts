#!/usr/bin/env node
import { ValidationError } from '@deepkit/type';
import { invalidModuleConfigIn } from '@switchboard/protocol/internal';
import { createBrokerApp } from './app';
import { checkEnvironment, ConfigError } from './config';
import { brokerCommands, restrictToBrokerCommands, StartCommand } from './commands';
import { showDefaultsInHelp, unknownCommand, unknownFlag } from './commands/command-line-checks';

/**
 * The broker's command line, the `switchboard` binary of @switchboard/broker: `start`, `peers`, `token:create`,
 * `token:revoke`, `token:list`, `audit`. Settings come from SWITCHBOARD_* environment variables (see server/config.ts)
 * and the flags of `start`.
 */
function explain(error: unknown): string {
    if (error instanceof ValidationError) {
        return error.errors.map(item => new ConfigError(item.path, item.message).message).join('\n');
    }
    // Deepkit reports an invalid module config as text: "… Error: port(maximum): Number needs to be …".
    const invalid = error instanceof Error ? invalidModuleConfigIn(error.message) : undefined;
    if (invalid) return new ConfigError(invalid.setting, invalid.problem).message;
    return error instanceof Error ? error.message : String(error);
}

const environmentProblems = checkEnvironment(process.env);
if (environmentProblems.length) {
    for (const { setting, problem } of environmentProblems) console.error(new ConfigError(setting, problem).message);
    process.exit(1);
}

const mistake = unknownCommand(process.argv.slice(2), brokerCommands) ?? unknownFlag(process.argv.slice(2), brokerCommands);
if (mistake) {
    console.error(mistake);
    process.exit(2);
}

const app = createBrokerApp().loadConfigFromEnv({ prefix: 'SWITCHBOARD_' });
(async () => {
    restrictToBrokerCommands(app);
    showDefaultsInHelp(StartCommand);
    // The exit code is set, not forced: a broker that still holds a handle after stopping shows up as one that hangs.
    process.exitCode = await app.execute(process.argv.slice(2), 'switchboard');
})().catch(error => {
    console.error(explain(error));
    process.exit(1);
});
