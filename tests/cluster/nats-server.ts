import { ChildProcess, spawn } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { delimiter, join } from 'path';

/** nats-server from the PATH (Debian's package installs it in /usr/sbin, often not on a user's PATH), or $NATS_SERVER. */
export function natsServerBinary(): string | undefined {
    if (process.env.NATS_SERVER) return process.env.NATS_SERVER;
    const directories = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/bin'];
    return directories.map(directory => join(directory, 'nats-server')).find(candidate => existsSync(candidate));
}

/**
 * `describe`, or — without nats-server — `describe.skip` with a loud warning. Under CI=true a missing nats-server
 * fails instead: CI installs it (.ci/run), so its absence there is a broken setup, not a reason to skip.
 */
export function describeWithNats(name: string, body: () => void): void {
    if (natsServerBinary()) return describe(name, body);
    if (process.env.CI === 'true') {
        describe(name, () => it('needs nats-server', () => {
            throw new Error('nats-server is not installed (apt-get install nats-server), and CI=true requires it');
        }));
        return;
    }
    console.warn(`SKIPPED "${name}": nats-server is not installed (apt-get install nats-server, or set NATS_SERVER)`);
    describe.skip(name, body);
}

/**
 * A real nats-server with JetStream for a test, on a free port of loopback, with a store of its own. It can be
 * stopped, killed, and started again on the same port with the same store or an empty one.
 */
export class NatsServer {
    protected child?: ChildProcess;
    protected exited?: Promise<void>;
    protected output = '';
    port = 0;

    protected constructor(protected readonly root: string) {
    }

    static async start(): Promise<NatsServer> {
        const server = new NatsServer(mkdtempSync(join(tmpdir(), 'switchboard-nats-')));
        await server.launch();
        return server;
    }

    get url(): string {
        return `nats://127.0.0.1:${this.port}`;
    }

    get running(): boolean {
        return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
    }

    /** Starts it again on the same port; `emptyStore` throws the JetStream store (the directory) away first. */
    async restart(options: { emptyStore?: boolean } = {}): Promise<void> {
        if (this.running) await this.stop();
        if (options.emptyStore) rmSync(join(this.root, 'store'), { recursive: true, force: true });
        await this.launch();
    }

    /** SIGTERM: a clean shutdown. */
    async stop(): Promise<void> {
        if (!this.running) return;
        this.child!.kill('SIGTERM');
        await this.exited;
    }

    /** SIGKILL: NATS vanishes mid-flight. */
    async kill(): Promise<void> {
        if (!this.running) return;
        this.child!.kill('SIGKILL');
        await this.exited;
    }

    async dispose(): Promise<void> {
        await this.kill();
        rmSync(this.root, { recursive: true, force: true });
    }

    protected async launch(): Promise<void> {
        const portsDirectory = mkdtempSync(join(this.root, 'ports-'));
        const port = this.port ? String(this.port) : '-1';
        const child = spawn(natsServerBinary()!, ['-a', '127.0.0.1', '-p', port, '-js', '-sd', join(this.root, 'store'), '--ports_file_dir', portsDirectory], { stdio: ['ignore', 'pipe', 'pipe'] });
        this.child = child;
        this.output = '';
        child.stdout!.on('data', chunk => this.output += chunk);
        child.stderr!.on('data', chunk => this.output += chunk);
        this.exited = new Promise(resolve => child.once('exit', () => resolve()));
        const portsFile = join(portsDirectory, `nats-server_${child.pid}.ports`);
        // The server writes its ports file once it accepts clients; the file is the event to wait for.
        const deadline = Date.now() + 10_000;
        while (!existsSync(portsFile)) {
            if (!this.running) throw new Error(`nats-server exited at start:\n${this.output}`);
            if (Date.now() > deadline) throw new Error(`nats-server wrote no ports file in 10 s:\n${this.output}`);
            await new Promise(resolve => setTimeout(resolve, 5));
        }
        let ports: { nats: string[] } | undefined;
        while (!ports) {
            try {
                ports = JSON.parse(readFileSync(portsFile, 'utf8'));
            } catch {
                // Read while it was being written.
                await new Promise(resolve => setTimeout(resolve, 5));
            }
        }
        this.port = Number(new URL(ports.nats[0]).port);
        rmSync(portsDirectory, { recursive: true, force: true });
    }
}
