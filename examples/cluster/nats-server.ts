import { ChildProcess, spawn } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { delimiter, join } from 'path';
import { natsServerConfig, NatsUser } from '@switchboard/broker';

/**
 * The `nats-server` binary: NATS_SERVER, else the first on PATH or in the sbin directories (Debian's package installs
 * it in /usr/sbin, which is often not on a user's PATH).
 */
export function natsServerBinary(): string | undefined {
    if (process.env.NATS_SERVER) return process.env.NATS_SERVER;
    const directories = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/bin'];
    return directories.filter(Boolean).map(directory => join(directory, 'nats-server')).find(candidate => existsSync(candidate));
}

/** No `nats-server` to run; the message says how to get one. */
export class NatsServerMissing extends Error {
    constructor(where = 'on PATH or in /usr/sbin') {
        super(`nats-server not found (${where}). Install it (Debian/Ubuntu: apt-get install nats-server; or https://github.com/nats-io/nats-server/releases), or set NATS_SERVER to its path.`);
    }
}

export interface NatsServerOptions {
    /** Client port; default: a free one. */
    port?: number;
    /** JetStream store; default: a temporary directory, removed by `stop()`. */
    storeDirectory?: string;
    /** Milliseconds to wait for the server to listen. */
    startTimeoutMs?: number;
    /**
     * The only clients the server accepts (nats-server's `authorization`), each with its permissions (see
     * server/cluster/nats-permissions.ts). Without: open to anyone who reaches the port (the bench's own NATS only).
     */
    users?: NatsUser[];
}

export interface RunningNatsServer {
    /** `nats://127.0.0.1:<port>`, without credentials */
    url: string;
    port: number;
    storeDirectory: string;
    /** Stops the server (and removes a temporary store). Safe to call twice. */
    stop(): Promise<void>;
}

/**
 * A local `nats-server` with JetStream, listening on 127.0.0.1: for the cluster demo and the bench. Its port is read
 * from the file the server writes once it listens (`--ports_file_dir`), so a free port (`-p -1`) works without races.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<RunningNatsServer> {
    const binary = natsServerBinary();
    if (!binary) throw new NatsServerMissing();
    const temporary = mkdtempSync(join(tmpdir(), 'switchboard-nats-'));
    const storeDirectory = options.storeDirectory ?? join(temporary, 'store');
    const portsDirectory = join(temporary, 'ports');
    const removeTemporary = () => rmSync(temporary, { recursive: true, force: true });
    mkdirSync(portsDirectory);

    let args = ['-a', '127.0.0.1', '-p', String(options.port ?? -1), '-js', '-sd', storeDirectory, '--ports_file_dir', portsDirectory];
    if (options.users) {
        const config = join(temporary, 'nats.conf');
        writeFileSync(config, natsServerConfig({ port: options.port ?? -1, storeDirectory, users: options.users }), { mode: 0o600 });
        args = ['-c', config, '--ports_file_dir', portsDirectory];
    }
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', chunk => log = (log + chunk).slice(-4000));
    // A binary that cannot be spawned emits 'error' and never 'exit'.
    const exited = new Promise<void>(resolve => {
        child.once('exit', () => resolve());
        child.once('error', () => resolve());
    });

    let url: string;
    try {
        url = await listening(child, portsDirectory, options.startTimeoutMs ?? 10_000, () => log);
    } catch (error) {
        child.kill('SIGKILL');
        await exited;
        removeTemporary();
        throw error;
    }
    let stopping: Promise<void> | undefined;
    return {
        url,
        port: Number(new URL(url).port),
        storeDirectory,
        stop: () => stopping ??= (async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
            await exited;
            removeTemporary();
        })(),
    };
}

/** Resolves with the client URL once the server wrote its ports file; rejects if it exits or spawning fails. */
function listening(child: ChildProcess, portsDirectory: string, timeoutMs: number, log: () => string): Promise<string> {
    return new Promise((resolve, reject) => {
        const watcher = watch(portsDirectory);
        const timer = setTimeout(() => done(new Error(`nats-server did not start listening within ${timeoutMs} ms:\n${log()}`)), timeoutMs);
        const check = () => {
            for (const name of readdirSync(portsDirectory)) {
                if (!name.endsWith('.ports')) continue;
                try {
                    const url = (JSON.parse(readFileSync(join(portsDirectory, name), 'utf8')) as { nats?: string[] }).nats?.[0];
                    if (url) return done(undefined, url);
                } catch {
                    // Written but not complete yet: the next change event reads it again.
                }
            }
        };
        const onError = (error: NodeJS.ErrnoException) => done(error.code === 'ENOENT' ? new NatsServerMissing(`NATS_SERVER=${process.env.NATS_SERVER}`) : error);
        const onExit = (code: number | null) => done(new Error(`nats-server exited (code ${code}) before listening:\n${log()}`));
        function done(error?: Error, url?: string) {
            clearTimeout(timer);
            watcher.close();
            child.off('error', onError);
            child.off('exit', onExit);
            if (error) reject(error);
            else resolve(url!);
        }
        watcher.on('change', check);
        child.once('error', onError);
        child.once('exit', onExit);
        check();
    });
}
