import { join } from 'path';
import { parseArgs, ParseArgsConfig } from 'util';
import { FeatureMap, Peer } from '@switchboard/peer';
import { AccessDenied, AuthenticationFailed, Disconnected, InvalidPeerId, PeerIdTaken, PeerReplaced, SwitchboardError } from '@switchboard/protocol';

export interface ExampleArgs {
    id: string;
    /** As given: one broker URL, or several of one cluster comma-separated. */
    url: string;
    /** The brokers to try, in order. */
    urls: string[];
    token?: string;
    storage: string;
    positionals: string[];
    values: Record<string, string | boolean | undefined>;
}

const common = {
    id: { type: 'string' },
    url: { type: 'string', default: process.env.SWITCHBOARD_URL ?? 'ws://127.0.0.1:8080' },
    token: { type: 'string' },
    storage: { type: 'string' },
    help: { type: 'boolean' },
} as const;

/**
 * Parses `--id alice [--url …] [--token …] [--storage …]` plus the example's own options; prints usage on error.
 * `--url` (or SWITCHBOARD_URL) may name several brokers of one cluster, comma-separated: the peer fails over.
 */
export function exampleArgs(usage: string, extra: ParseArgsConfig['options'] = {}): ExampleArgs {
    try {
        const { values, positionals } = parseArgs({ options: { ...common, ...extra }, allowPositionals: true });
        if (values.help) exit(0, usage);
        if (typeof values.id !== 'string' || !values.id) exit(2, `Missing --id.\n${usage}`);
        const id = values.id as string;
        return {
            id,
            url: values.url as string,
            urls: (values.url as string).split(',').map(url => url.trim()).filter(url => url),
            token: values.token as string | undefined,
            storage: (values.storage as string | undefined) ?? join('var', 'examples', `${id}.sqlite`),
            positionals,
            values: values as ExampleArgs['values'],
        };
    } catch (error) {
        return exit(2, `${(error as Error).message}\n${usage}`);
    }
}

/**
 * Connects as a peer (with the opt-in `features` given), or exits with one line saying what to do. Reports
 * connection changes as they happen.
 */
export async function connectPeer<F extends FeatureMap = Record<never, never>>(args: ExampleArgs, prepare?: (peer: Peer<F>) => void, features?: F): Promise<Peer<F>> {
    let peer: Peer<F>;
    try {
        // presence 'all': the examples list everyone on the broker (/peers, "bob is online"); an app follows only the
        // peers it deals with, the default.
        peer = Peer.create({ url: args.urls, id: args.id, token: args.token, storage: args.storage, presence: 'all', reconnect: { initialDelayMs: 200, maxDelayMs: 5000 }, features });
    } catch (error) {
        return exit(2, explain(error, args));
    }
    prepare?.(peer);
    try {
        await peer.start();
    } catch (error) {
        return exit(1, explain(error, args));
    }
    let wasRegistered = true;
    peer.state$.subscribe(state => {
        if (state === 'disconnected' && wasRegistered) {
            wasRegistered = false;
            say('! connection to the broker lost; reconnecting …');
        }
        if (state === 'registered' && !wasRegistered) {
            wasRegistered = true;
            say(`! reconnected as ${args.id}${args.urls.length > 1 ? ` via ${peer.brokerUrl}` : ''}`);
        }
    });
    // Another process took this ID over with the same storage (reclaim secret) or token: say so and stop, instead of
    // taking it back and forth.
    peer.errors$.subscribe(error => {
        if (error instanceof PeerReplaced) void peer.close().finally(() => exit(1, `! ${error.message}`));
    });
    const stop = () => {
        void peer.close().finally(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return peer;
}

export function explain(error: unknown, args: { id: string, url: string }): string {
    if (error instanceof Disconnected && args.url.includes(',')) return `Cannot reach any of the brokers ${args.url}. Start them with \`npm run cluster\`, or pass --url.`;
    if (error instanceof Disconnected) return `Cannot reach the broker at ${args.url}. Start it with \`npm start\`, or pass --url.`;
    if (error instanceof AuthenticationFailed) return `The broker refused the token: ${error.message}`;
    if (error instanceof PeerIdTaken) return `The ID "${args.id}" is in use by another client. Pick another --id.`;
    if (error instanceof InvalidPeerId) return error.message;
    if (error instanceof AccessDenied) return `The broker refused: ${error.message}`;
    if (error instanceof SwitchboardError) return error.message;
    return error instanceof Error ? error.message : String(error);
}

export function say(line: string): void {
    process.stdout.write(line + '\n');
}

export function exit(code: number, message: string): never {
    (code === 0 ? process.stdout : process.stderr).write(message + '\n');
    process.exit(code);
}
