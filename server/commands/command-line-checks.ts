import { existsSync } from 'fs';
import { resolve } from 'path';
import { cli, parseCliArgs } from '@deepkit/app';
import { ClassType } from '@deepkit/core';
import { ReflectionClass } from '@deepkit/type';
import { BrokerConfig, environmentName } from '../config';

/**
 * Checks of the command line that Deepkit's CLI leaves out: an unknown command (Deepkit prints an empty command list
 * and exits 0), an unknown flag (Deepkit ignores it), the defaults in `start --help`, and a read-only command pointed at a database that does not exist.
 */

/** Edits needed to turn `a` into `b` (Levenshtein): how a typo is matched to the command meant. */
function distance(a: string, b: string): number {
    let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
    for (let i = 1; i <= a.length; i++) {
        const current = [i];
        for (let j = 1; j <= b.length; j++) {
            current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        }
        previous = current;
    }
    return previous[b.length];
}

/**
 * The line to print when `argv` names no command of `commands`, with the closest one as a suggestion; undefined
 * when it names one, asks for help or is empty.
 */
export function unknownCommand(argv: string[], commands: ClassType[]): string | undefined {
    const [name] = argv;
    if (name === undefined || name === 'help' || name === '--help') return undefined;
    const names = commands.map(command => cli._fetch(command)?.name).filter((known): known is string => !!known);
    if (names.includes(name)) return undefined;
    const [closest] = names
        .map(known => ({ known, edits: known.startsWith(name) ? 0 : distance(name, known) }))
        .filter(candidate => candidate.edits <= Math.max(2, Math.floor(candidate.known.length / 3)))
        .sort((a, b) => a.edits - b.edits);
    const hint = closest ? ` Did you mean "${closest.known}"?` : '';
    return `Unknown command "${name}".${hint} Commands: ${names.join(', ')}. See: switchboard --help`;
}

/**
 * Adds each setting's default to the help text of `command`'s flags that are settings of BrokerConfig. The flags
 * themselves stay without a default: a default there would override the SWITCHBOARD_* variable.
 */
export function showDefaultsInHelp(command: ClassType): void {
    const defaults = new BrokerConfig() as unknown as Record<string, unknown>;
    for (const parameter of ReflectionClass.from(command).getMethod('execute').getParameters()) {
        const type = parameter.parameter;
        if (!(parameter.name in defaults) || type.description?.includes('(default')) continue;
        const value = defaults[parameter.name];
        const shown = value === '' ? 'none' : String(value);
        type.description = `${type.description ?? ''} (default: ${shown}; ${environmentName(parameter.name)})`;
    }
}

/**
 * For commands that only read the broker's database: the line to print when `database` does not exist, so that the
 * command does not create an empty one in the wrong folder. undefined when it exists (or is `:memory:`).
 */
export function missingDatabase(database: string): string | undefined {
    if (database === ':memory:' || existsSync(database)) return undefined;
    return `No broker database at ${resolve(database)}. The broker creates it on start; run this in the broker's folder, or pass --database (SWITCHBOARD_DATABASE).`;
}

/**
 * The first flag `argv` gives its command that the command does not have, as a line to print. Deepkit ignores
 * unknown flags, so a typo (`--prot 80`) would start a broker on the default port.
 */
export function unknownFlag(argv: string[], commands: ClassType[]): string | undefined {
    const [name, ...rest] = argv;
    const command = commands.find(candidate => cli._fetch(candidate)?.name === name);
    if (!command || rest.includes('--help')) return undefined;
    const known = new Set(ReflectionClass.from(command).getMethod('execute').getParameters().map(parameter => parameter.name));
    // Parsed as Deepkit parses them, so `--port=80` (which Deepkit reads as a flag named "port=80") is unknown too.
    const unknown = Object.keys(parseCliArgs(rest)).find(flag => flag !== '@' && !known.has(flag));
    return unknown === undefined ? undefined : `Unknown flag "--${unknown}" for ${name}. See: ${name} --help`;
}
