import { ChildProcess, spawn } from 'child_process';
import { join } from 'path';
import { Peer } from '../peer';
import type { PresenceMode } from '../peer';
import type { Measurement } from './scenarios';
import { processCpuSeconds, ServerProcess } from './systems';

/** Crowd peers per child process: the crowd's own work stays off the harness (which measures the joiners). */
const CROWD_PER_PROCESS = 2500;
/** SDK peers per child process in the storm: each reconnects with its own storage, kernel and watchdog. */
const SDK_CROWD_PER_PROCESS = 500;

export interface RegistrationSizes {
    /** Peers online before the measured joins. */
    crowds: number[];
    /** The crowd modes measured at most this many online (following everyone costs the crowd's ramp O(n²) frames). */
    everyoneUpTo: number;
    /** Measured joins per crowd (after warm-up joins). */
    joins: number;
    /** SDK peers of the reconnect storm. */
    stormPeers: number;
}

export const fullRegistrationSizes: RegistrationSizes = { crowds: [100, 1_000, 10_000], everyoneUpTo: 1_000, joins: 40, stormPeers: Number(process.env.BENCH_STORM_PEERS ?? 2_000) };
export const quickRegistrationSizes: RegistrationSizes = { crowds: [20, 100], everyoneUpTo: 100, joins: 5, stormPeers: 50 };

/** A crowd of peers in its own process (bench/crowd.ts). */
class CrowdProcess {
    protected lines: string[] = [];
    protected waiting: ((line: string) => void)[] = [];

    protected constructor(readonly child: ChildProcess) {
        let rest = '';
        child.stdout!.on('data', chunk => {
            rest += chunk;
            let newline: number;
            while ((newline = rest.indexOf('\n')) >= 0) {
                const line = rest.slice(0, newline);
                rest = rest.slice(newline + 1);
                const waiter = this.waiting.shift();
                if (waiter) waiter(line); else this.lines.push(line);
            }
        });
    }

    static async start(url: string, prefix: string, count: number, mode: 'everyone' | 'interest' | 'sdk'): Promise<CrowdProcess> {
        const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(__dirname, 'crowd.ts'), url, prefix, String(count), mode], {
            cwd: join(__dirname, '..'), stdio: ['pipe', 'pipe', 'inherit'],
        });
        const crowd = new CrowdProcess(child);
        const exited = new Promise<never>((resolve, reject) => child.once('exit', code => reject(new Error(`crowd ${prefix} exited with ${code}`))));
        const ready = await Promise.race([crowd.line(), exited]);
        if (ready !== 'ready') throw new Error(`crowd ${prefix}: ${ready}`);
        return crowd;
    }

    line(): Promise<string> {
        const buffered = this.lines.shift();
        if (buffered !== undefined) return Promise.resolve(buffered);
        return new Promise(resolve => this.waiting.push(resolve));
    }

    async registered(): Promise<number> {
        this.child.stdin!.write('count\n');
        return JSON.parse(await this.line()).registered;
    }

    async stop(): Promise<void> {
        const exited = new Promise(resolve => this.child.once('exit', resolve));
        this.child.stdin!.end();
        await exited;
    }
}

async function startCrowd(url: string, count: number, mode: 'everyone' | 'interest' | 'sdk'): Promise<CrowdProcess[]> {
    const perProcess = mode === 'sdk' ? SDK_CROWD_PER_PROCESS : CROWD_PER_PROCESS;
    const parts = Array.from({ length: Math.ceil(count / perProcess) }, (_, index) => Math.min(perProcess, count - index * perProcess));
    return Promise.all(parts.map((size, index) => CrowdProcess.start(url, `c${index}-`, size, mode)));
}

/** CPU milliseconds per join: the broker's (from /proc) and this process's (the joining SDK peer). */
async function joinCost(server: ServerProcess, url: string, joins: number, presence: PresenceMode, label: string): Promise<{ broker: number, joiner: number }> {
    const joined: Peer[] = [];
    try {
        // Warm-up: module loading and the first type round trips are not a join's cost.
        for (let index = 0; index < 3; index++) joined.push(await Peer.connect({ url, id: `warm-${label}-${index}`, presence }));
        const brokerBefore = server.cpuSeconds()!;
        const joinerBefore = process.cpuUsage();
        // One after another: each registration's cost is its own, not shared with a batch.
        for (let index = 0; index < joins; index++) joined.push(await Peer.connect({ url, id: `join-${label}-${index}`, presence }));
        const joiner = process.cpuUsage(joinerBefore);
        return { broker: (server.cpuSeconds()! - brokerBefore) * 1000 / joins, joiner: (joiner.user + joiner.system) / 1000 / joins };
    } finally {
        await Promise.all(joined.map(peer => peer.close()));
    }
}

/**
 * Registration cost by crowd size (issue 23): a broker in its own process with N peers online in child processes,
 * following presence as the SDK did before (everyone, a frame per change) or as it does now (by interest, batched);
 * then SDK peers join one after another: the broker's CPU per join (from /proc) and the joiner's (this process),
 * with the SDK's default presence and with presence off. Also the broker's RSS fresh and per crowd peer (after GC).
 */
export async function registrationCost(sizes: RegistrationSizes): Promise<Measurement[]> {
    const measurements: Measurement[] = [];
    for (const crowdMode of ['interest', 'everyone'] as const) {
        for (const crowd of sizes.crowds) {
            if (crowdMode === 'everyone' && crowd > sizes.everyoneUpTo) continue;
            const server = await ServerProcess.start('switchboard.ts');
            const url = `ws://127.0.0.1:${server.port}`;
            let crowdProcesses: CrowdProcess[] = [];
            try {
                const fresh = await server.rss();
                crowdProcesses = await startCrowd(url, crowd, crowdMode);
                const scenario = `registration, ${crowd} online (crowd following ${crowdMode === 'interest' ? 'by interest' : 'everyone'})`;
                if (crowdMode === 'interest') {
                    const withCrowd = await server.rss();
                    measurements.push(
                        { scenario, system: 'Switchboard', metric: 'broker RSS fresh', unit: 'MiB', value: fresh / 2 ** 20, better: 'lower' },
                        { scenario, system: 'Switchboard', metric: 'broker RSS per idle peer', unit: 'KiB', value: (withCrowd - fresh) / 1024 / crowd, better: 'lower' },
                    );
                }
                for (const presence of ['interest', false] as const) {
                    const cost = await joinCost(server, url, sizes.joins, presence, `${crowdMode}-${crowd}-${presence}`);
                    const joiner = presence === false ? 'SDK joiner, presence off' : 'SDK joiner, presence by interest';
                    measurements.push(
                        { scenario, system: 'Switchboard', metric: `broker CPU per join (${joiner})`, unit: 'ms', value: cost.broker, better: 'lower' },
                        { scenario, system: 'Switchboard', metric: `joiner CPU per join (${joiner})`, unit: 'ms', value: cost.joiner, better: 'lower' },
                    );
                }
            } finally {
                await Promise.all(crowdProcesses.map(each => each.stop()));
                await server.stop();
            }
        }
    }
    return measurements;
}

/**
 * The reconnect storm: `stormPeers` SDK peers (default options, in child processes) online; the broker is killed
 * (SIGKILL) and started again on the same port; time until every peer is registered again and the broker's CPU for it.
 */
export async function reconnectStorm(sizes: RegistrationSizes): Promise<Measurement[]> {
    const scenario = `reconnect storm, ${sizes.stormPeers} SDK peers`;
    let server = await ServerProcess.start('switchboard.ts');
    const port = server.port;
    const url = `ws://127.0.0.1:${port}`;
    let crowd: CrowdProcess[] = [];
    try {
        crowd = await startCrowd(url, sizes.stormPeers, 'sdk');
        server.child.kill('SIGKILL');
        await new Promise(resolve => server.child.once('exit', resolve));
        // The peers' side of the storm: what their processes spend reconnecting and registering again.
        const crowdCpu = () => crowd.reduce((sum, each) => sum + (processCpuSeconds(each.child.pid!) ?? 0), 0);
        const crowdBefore = crowdCpu();
        const started = performance.now();
        server = await ServerProcess.start('switchboard.ts', { BENCH_BROKER_PORT: String(port) });
        const startupCpu = server.cpuSeconds()!;
        for (;;) {
            const counts = await Promise.all(crowd.map(each => each.registered()));
            if (counts.reduce((sum, each) => sum + each, 0) >= sizes.stormPeers) break;
            await new Promise(resolve => setTimeout(resolve, 100));
        }
        const seconds = (performance.now() - started) / 1000;
        const peersCpu = crowdCpu() - crowdBefore;
        return [
            { scenario, system: 'Switchboard', metric: 'time until all registered again', unit: 's', value: seconds, better: 'lower' },
            { scenario, system: 'Switchboard', metric: 'broker CPU for the storm', unit: 's', value: server.cpuSeconds()! - startupCpu, better: 'lower' },
            { scenario, system: 'Switchboard', metric: "the peers' CPU for the storm", unit: 's', value: peersCpu, better: 'lower' },
            { scenario, system: 'Switchboard', metric: "the peers' CPU per peer", unit: 'ms', value: peersCpu * 1000 / sizes.stormPeers, better: 'lower' },
        ];
    } finally {
        await Promise.all(crowd.map(each => each.stop()));
        await server.stop();
    }
}
