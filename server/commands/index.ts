/**
 * The broker's command line, one file a command group: `start` (start-command.ts), the registry's `peers` and
 * `audit` (registry-commands.ts), `token:*` (token-commands.ts) and `drain` (drain-command.ts).
 */
import { App } from '@deepkit/app';
import { ClassType } from '@deepkit/core';
import { ConsoleTransport, Logger } from '@deepkit/logger';
import { DrainCommand } from './drain-command';
import { AuditCommand, PeersCommand } from './registry-commands';
import { StartCommand } from './start-command';
import { TokenCreateCommand, TokenListCommand, TokenRevokeCommand } from './token-commands';

export { StartCommand } from './start-command';
export { formatAuditEvent, printable } from './printable';

/** The commands `server/main.ts` offers; its `--help` lists these and no others. */
export const brokerCommands: ClassType[] = [StartCommand, PeersCommand, TokenCreateCommand, TokenRevokeCommand, TokenListCommand, AuditCommand, DrainCommand];

/**
 * Makes the App's command line ours alone. FrameworkModule brings `server:start` (a server without our start-up
 * checks), `migration:*` (we migrate on start) and `debug:*`; Deepkit has no option to leave them out, so they are
 * taken out of its CLI registry once the App is built. Also makes the log plain when stdout is not a terminal
 * (Deepkit's console transport writes colour codes always). tests/cli.test.ts fails if Deepkit changes this.
 */
export function restrictToBrokerCommands(app: App<any>): void {
    app.serviceContainer.process();  // fills the registry; a no-op when the App is built already
    const registry = app.serviceContainer.cliControllerRegistry.controllers;
    const ours = registry.filter(config => config.controller && brokerCommands.includes(config.controller));
    registry.splice(0, registry.length, ...ours);
    const colours = process.stdout.isTTY === true && !('NO_COLOR' in process.env);
    app.get(Logger).setTransport([new ConsoleTransport(colours)]);
}
