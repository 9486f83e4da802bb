/**
 * A real nats-server with JetStream for the cluster's tests and benchmarks: started on a free port, stopped, killed
 * and restarted in place. The tests' `describeWithNats` is in tests/cluster/nats-server.ts.
 */
import { ChildProcess, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { delimiter, join } from 'path';
import { brokerUser, natsServerConfig, NatsUser, operatorUser } from '../server/cluster/nats-permissions';

/** nats-server from the PATH (Debian's package installs it in /usr/sbin, often not on a user's PATH), or $NATS_SERVER. */
export function natsServerBinary(): string | undefined {
    if (process.env.NATS_SERVER) return process.env.NATS_SERVER;
    const directories = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/bin'];
    return directories.map(directory => join(directory, 'nats-server')).find(candidate => existsSync(candidate));
}

/**
 * A real nats-server with JetStream for a test, on a free port of loopback, with a store of its own. It can be
 * stopped, killed, and started again on the same port with the same store or an empty one.
 *
 * Not open, as a cluster's NATS must never be: it knows only its users. `url` is the harness's own (every subject:
 * tests look into buckets, the CLI's token commands use it); each broker gets a user of its own with only the
 * subjects a broker needs (brokerUser), added with a configuration reload.
 */
export class NatsServer {
    protected child?: ChildProcess;
    protected exited?: Promise<void>;
    protected output = '';
    protected readonly users: NatsUser[] = [];
    protected readonly adminPassword = randomBytes(12).toString('hex');
    protected launchPort = -1;
    port = 0;

    protected constructor(protected readonly root: string) {
    }

    static async start(): Promise<NatsServer> {
        const server = new NatsServer(mkdtempSync(join(tmpdir(), 'switchboard-nats-')));
        await server.launch();
        return server;
    }

    /** The harness's own user: may use every subject. */
    get url(): string {
        return `nats://admin:${this.adminPassword}@127.0.0.1:${this.port}`;
    }

    /** No credentials: what anyone who reaches the port has. */
    get anonymousUrl(): string {
        return `nats://127.0.0.1:${this.port}`;
    }

    /**
     * A NATS user for each broker ID of `cluster`, with a broker's permissions only; one configuration reload for all.
     * @returns each broker's natsUrl, by broker ID
     */
    async addBrokers(cluster: string, brokerIds: string[]): Promise<Map<string, string>> {
        const urls = new Map<string, string>();
        for (const brokerId of brokerIds) {
            const user = `${cluster}-${brokerId}`;
            const password = randomBytes(12).toString('hex');
            this.users.push(brokerUser(cluster, brokerId, user, password));
            urls.set(brokerId, `nats://${user}:${password}@127.0.0.1:${this.port}`);
        }
        await this.reload();
        return urls;
    }

    /** A user for the token and audit commands of `cluster` (operatorUser: its buckets and audit trail, no frames). */
    async addOperator(cluster: string): Promise<string> {
        const user = `${cluster}-operator`;
        const password = randomBytes(12).toString('hex');
        this.users.push(operatorUser(cluster, user, password));
        await this.reload();
        return `nats://${user}:${password}@127.0.0.1:${this.port}`;
    }

    /** Writes the configuration; SIGHUP makes a running server read it again, and it says so in its log. */
    protected async reload(): Promise<void> {
        this.writeConfig();
        if (!this.running) return;
        const reloaded = () => this.output.split('Reloaded server configuration').length - 1;
        const before = reloaded();
        this.child!.kill('SIGHUP');
        const deadline = Date.now() + 10_000;
        while (reloaded() === before) {
            if (!this.running) throw new Error(`nats-server exited at a configuration reload:\n${this.output}`);
            if (Date.now() > deadline) throw new Error(`nats-server did not reload its configuration in 10 s:\n${this.output}`);
            await new Promise(resolve => setTimeout(resolve, 5));
        }
    }

    protected writeConfig(): void {
        const admin: NatsUser = { user: 'admin', password: this.adminPassword, permissions: { publish: { allow: ['>'] }, subscribe: { allow: ['>'] } } };
        // The port the running server was started with (-1: any free one): a reload may not change it.
        writeFileSync(join(this.root, 'nats.conf'), natsServerConfig({ port: this.launchPort, storeDirectory: join(this.root, 'store'), users: [admin, ...this.users] }));
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
        this.launchPort = this.port || -1;
        this.writeConfig();
        const child = spawn(natsServerBinary()!, ['-c', join(this.root, 'nats.conf'), '--ports_file_dir', portsDirectory], { stdio: ['ignore', 'pipe', 'pipe'] });
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
