/**
 * `npm run cluster`: a local cluster to try things on. Starts nats-server (JetStream, a temporary store) and brokers
 * in child processes, each with its own SQLite file under var/cluster/ and its own dashboard, prints where they are
 * and how to point the examples at them, and stops everything on Ctrl-C or SIGTERM. Kill one broker (its PID is
 * printed) to watch its peers move to the others.
 */
import { ChildProcess, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { mkdirSync } from 'fs';
import { join } from 'path';
import { parseArgs } from 'util';
import { brokerUser, NatsUser, operatorUser } from '@switchboard/broker';
import { NatsServerMissing, RunningNatsServer, startNatsServer } from './nats-server';
import { rollingRestart } from './rolling-restart';

const usage = `Usage: npm run cluster -- [--port 4001] [--brokers 3] [--cluster demo] [--rolling-restart]

Starts nats-server and <brokers> brokers on consecutive ports from --port (4001, 4002, 4003), each with its
dashboard on the same port. Ctrl-C stops them all. --rolling-restart: once up, peers call each other in a loop while
each broker is restarted in turn (SIGTERM: it drains, its peers move first); prints the failed calls, then stops.`;

const root = join(__dirname, '..', '..');
/** Long enough for a broker to flush its writes and tell its peers. */
const STOP_GRACE_MS = 10_000;

interface BrokerProcess {
    name: string;
    port: number;
    child: ChildProcess;
    /** How it ended: its exit code, or the signal that ended it. */
    exited: Promise<number | string>;
}

function parse(): { port: number, brokers: number, cluster: string, rollingRestart: boolean } {
    try {
        const { values } = parseArgs({
            options: {
                port: { type: 'string', default: '4001' },
                brokers: { type: 'string', default: '3' },
                cluster: { type: 'string', default: 'demo' },
                'rolling-restart': { type: 'boolean' },
                help: { type: 'boolean' },
            },
        });
        if (values.help) {
            console.log(usage);
            process.exit(0);
        }
        const port = Number(values.port);
        const brokers = Number(values.brokers);
        if (!Number.isInteger(port) || port < 1 || port + brokers - 1 > 65535) throw new Error(`--port must be a port number, got "${values.port}".`);
        if (!Number.isInteger(brokers) || brokers < 1 || brokers > 16) throw new Error(`--brokers must be 1 … 16, got "${values.brokers}".`);
        return { port, brokers, cluster: values.cluster!, rollingRestart: !!values['rolling-restart'] };
    } catch (error) {
        console.error(`${(error as Error).message}\n${usage}`);
        return process.exit(2);
    }
}

/** `nats://user:password@host:port` for one of the NATS server's users. */
function natsUrlOf(nats: RunningNatsServer, user: NatsUser): string {
    return `nats://${user.user}:${user.password}@127.0.0.1:${nats.port}`;
}

/**
 * One broker as `npm start` runs it, in the cluster, with its own NATS user (only its cluster's subjects, only its
 * own inbox); its output goes to ours, each line marked with its name.
 */
function startBroker(name: string, port: number, nats: RunningNatsServer, cluster: string, user: NatsUser): BrokerProcess {
    const database = join('var', 'cluster', `${name}.sqlite`);
    // The compiled broker (`npm run cluster` builds first), which starts in about a second.
    const child = spawn(process.execPath, [join('server', 'dist', 'main.js'), 'start', '--port', String(port), '--database', database], {
        cwd: root,
        env: { ...process.env, SWITCHBOARD_NATS_URL: natsUrlOf(nats, user), SWITCHBOARD_CLUSTER: cluster, SWITCHBOARD_BROKER_ID: name },
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout!, child.stderr!]) {
        let partial = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => {
            const lines = (partial + chunk).split('\n');
            partial = lines.pop()!;
            for (const line of lines) process.stdout.write(`[${name}] ${line}\n`);
        });
    }
    const exited = new Promise<number | string>(resolve => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
    return { name, port, child, exited };
}

/** Resolves once the broker says it listens; rejects if it exits first. */
function listening(broker: BrokerProcess): Promise<void> {
    return new Promise((resolve, reject) => {
        const onData = (chunk: Buffer | string) => {
            if (!String(chunk).includes('listening on')) return;
            broker.child.stdout!.off('data', onData);
            resolve();
        };
        broker.child.stdout!.on('data', onData);
        void broker.exited.then(how => reject(new Error(`${broker.name} exited (${how}) before it listened (see its lines above).`)));
    });
}

async function stopBroker(broker: BrokerProcess): Promise<void> {
    if (broker.child.exitCode !== null || broker.child.signalCode !== null) return;
    broker.child.kill('SIGTERM');
    const timer = setTimeout(() => broker.child.kill('SIGKILL'), STOP_GRACE_MS);
    await broker.exited;
    clearTimeout(timer);
}

async function main(): Promise<void> {
    const options = parse();
    // NATS is not open: each broker has a user of its own, and the token commands one more (the operator's).
    const password = () => randomBytes(18).toString('base64url');
    const names = Array.from({ length: options.brokers }, (_, i) => `broker-${i + 1}`);
    const users = names.map(name => brokerUser(options.cluster, name, name, password()));
    const operator = operatorUser(options.cluster, 'operator', password());
    let nats: RunningNatsServer;
    try {
        nats = await startNatsServer({ users: [...users, operator] });
    } catch (error) {
        console.error(error instanceof NatsServerMissing ? error.message : `Could not start nats-server: ${(error as Error).message}`);
        return process.exit(1);
    }
    mkdirSync(join(root, 'var', 'cluster'), { recursive: true });
    const brokers: BrokerProcess[] = [];
    let stopping = false;
    const stop = async (code: number) => {
        if (stopping) return;
        stopping = true;
        console.log('Stopping the brokers and nats-server …');
        await Promise.all(brokers.map(stopBroker));
        await nats.stop();
        process.exit(code);
    };
    process.once('SIGINT', () => void stop(0));
    process.once('SIGTERM', () => void stop(0));

    for (let i = 0; i < options.brokers; i++) brokers.push(startBroker(names[i], options.port + i, nats, options.cluster, users[i]));
    try {
        await Promise.all(brokers.map(listening));
    } catch (error) {
        console.error((error as Error).message);
        return stop(1);
    }
    for (const broker of brokers) {
        void broker.exited.then(how => {
            if (!stopping) console.log(`${broker.name} exited (${how}); the others keep running, and its peers that know them move there.`);
        });
    }

    const urls = brokers.map(broker => `ws://127.0.0.1:${broker.port}`);
    // Each example peer gets the list from a different broker on, so they spread over the cluster.
    const rotated = (from: number) => [...urls.slice(from % urls.length), ...urls.slice(0, from % urls.length)].join(',');
    console.log([
        '',
        `Cluster "${options.cluster}" is up: nats-server at ${nats.url} (JetStream store ${nats.storeDirectory}) and ${brokers.length} brokers:`,
        ...brokers.map(broker => `  ${broker.name}  ws://127.0.0.1:${broker.port}  dashboard http://127.0.0.1:${broker.port}/  (pid ${broker.child.pid})`),
        '',
        'Point the examples at it: each peer takes the broker list (comma-separated) and fails over along it.',
        `  SWITCHBOARD_URL=${rotated(0)} npm run chat -- --id alice`,
        `  SWITCHBOARD_URL=${rotated(1)} npm run chat -- --id bob`,
        `  npm run web -- --broker ${rotated(2)}`,
        `Kill a broker (kill <pid>) to watch its peers move; Ctrl-C stops everything.`,
        `NATS accepts only the brokers' users and the operator's, for the token commands:`,
        `  SWITCHBOARD_NATS_URL='${natsUrlOf(nats, operator)}' SWITCHBOARD_CLUSTER=${options.cluster} npx switchboard token:list`,
        '',
    ].join('\n'));

    if (options.rollingRestart) {
        const restartable = brokers.map((broker, i) => ({
            name: broker.name,
            restart: async () => {
                await stopBroker(brokers[i]);
                brokers[i] = startBroker(broker.name, broker.port, nats, options.cluster, users[i]);
                await listening(brokers[i]);
            },
        }));
        const { calls, failed } = await rollingRestart(restartable, urls);
        console.log(`Rolling restart of ${brokers.length} brokers under load: ${calls} calls, ${failed} failed.`);
        await stop(failed ? 1 : 0);
    }
}

void main();
