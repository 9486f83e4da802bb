/**
 * `npm run pack-check`: what a developer does to use Switchboard in an app of their own, done for real. Packs every
 * package, then in a new folder outside the repository follows README.md's "Use it in your app" step by step: its
 * shell lines are run and its files written (so the README cannot drift from what works), against the packed
 * tarballs instead of the registry's @switchboard packages and the registry for everything else. Between the steps
 * it checks what a user would trip on next: one copy of each Deepkit package, runtime types in the installed code
 * and in the app's, and the `switchboard` binary (help, unknown flag, port in use, start time, SIGINT and SIGTERM).
 * The first failing step ends the run with its name and output; the folder is kept for a look.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { createServer } from 'net';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { readReadmeSection } from './readme-section';
import { CheckSteps, fail, run, StepFailed, userEnvironment } from './check-steps';

const repository = join(__dirname, '..');
const packages: Record<string, string> = {
    '@switchboard/protocol': 'shared',
    '@switchboard/peer': 'peer',
    '@switchboard/broker': 'server',
    '@switchboard/testing': 'testing',
};
const ourCommands = ['start', 'peers', 'token:create', 'token:revoke', 'token:list', 'audit'];

const steps = new CheckSteps('pack-check');
const step = (title: string): void => steps.step(title);

/** Packs every package (from its dist/, which `npm run build` made) into `directory`; the tarballs by name. */
function pack(directory: string): Record<string, string> {
    const tarballs: Record<string, string> = {};
    mkdirSync(directory, { recursive: true });
    for (const [name, folder] of Object.entries(packages)) {
        const output = run(`npm pack ${JSON.stringify(join(repository, folder, 'dist'))} --pack-destination ${JSON.stringify(directory)} --silent`, repository);
        const file = output.trim().split('\n').pop()!;
        if (!existsSync(join(directory, file))) fail(`npm pack of ${name} made no ${file}`, output);
        tarballs[name] = join(directory, file);
    }
    return tarballs;
}

/** A README command as run here: @switchboard packages from the tarballs (the protocol with the first of them). */
function withTarballs(commandLine: string, tarballs: Record<string, string>, protocolAdded: { done: boolean }): string {
    if (!/^npm install\b/.test(commandLine) || !commandLine.includes('@switchboard/')) return commandLine;
    let line = commandLine.replace(/@switchboard\/[\w-]+/g, name => {
        if (!tarballs[name]) fail(`README.md installs ${name}, which is not one of our packages`);
        return JSON.stringify(tarballs[name]);
    });
    // The registry would provide it as a dependency of the others; here it is one more tarball.
    if (!protocolAdded.done) {
        line += ' ' + JSON.stringify(tarballs['@switchboard/protocol']);
        protocolAdded.done = true;
    }
    return line;
}

/** Each Deepkit package once: a second copy fails at run time (e.g. `NotFound: This controller has no action`). */
function checkSingleCopies(app: string): void {
    const copies = new Map<string, string[]>();
    const walk = (directory: string) => {
        for (const entry of readdirSync(directory, { withFileTypes: true })) {
            if (!entry.isDirectory()) continue;
            const path = join(directory, entry.name);
            if (entry.name === 'node_modules') {
                for (const scope of ['@deepkit', '@switchboard']) {
                    const scoped = join(path, scope);
                    if (!existsSync(scoped)) continue;
                    for (const name of readdirSync(scoped)) copies.set(`${scope}/${name}`, [...copies.get(`${scope}/${name}`) ?? [], join(scoped, name)]);
                }
            }
            walk(path);
        }
    };
    walk(app);
    const duplicated = [...copies].filter(([, paths]) => paths.length > 1);
    if (duplicated.length) fail('packages installed more than once', duplicated.map(([name, paths]) => `${name}: ${paths.join(', ')}`).join('\n'));
    for (const name of ['@deepkit/rpc', '@deepkit/type', '@switchboard/protocol']) {
        if (!copies.has(name)) fail(`${name} is not installed`);
    }
    console.log(`one copy each of ${copies.size} @deepkit and @switchboard packages`);
}

/** The README's install lines pin Deepkit exactly (1.0.19, never ^1.0.19): ours require that one version. */
function checkExactDeepkit(app: string): void {
    const manifest = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    const loose = Object.entries({ ...manifest.dependencies, ...manifest.devDependencies })
        .filter(([name, version]) => name.startsWith('@deepkit/') && version !== '1.0.19');
    if (loose.length) fail(`the app's package.json does not pin Deepkit to 1.0.19: ${loose.map(([name, version]) => `${name}@${version}`).join(', ')}`);
}

/** Deepkit's runtime types: the type compiler emits `__Ω<Name>` for interfaces and `__type` arrays on classes. */
function checkRuntimeTypes(app: string): void {
    const checks: [file: string, expected: RegExp][] = [
        [join(app, 'node_modules/@switchboard/protocol/errors.js'), /\.__type = \[/],
        [join(app, 'node_modules/@switchboard/protocol/broker-api.js'), /__ΩPeerFilter/],
        [join(app, 'node_modules/@switchboard/peer/caller-context.js'), /\.__type = \[/],
        [join(app, 'node_modules/@switchboard/broker/config.js'), /\.__type = \[/],
        [join(app, 'dist/greeter-api.js'), /__ΩGreeterApi/],
        [join(app, 'dist/greeter.js'), /\.__type = \[/],
    ];
    for (const [file, expected] of checks) {
        if (!existsSync(file)) fail(`${file} is missing`);
        if (!expected.test(readFileSync(file, 'utf8'))) fail(`no runtime types (${expected}) in ${file}: was TypeScript patched (npx deepkit-type-install) and "reflection": true set?`);
    }
    console.log('runtime types in the installed packages and in the app');
}

interface Broker {
    child: ChildProcess;
    output: () => string;
    exit: Promise<number | string>;
}

/** Starts a broker in a process group of its own, as a terminal runs a command in the foreground. */
function startBroker(commandLine: string, app: string): Broker {
    console.log(`$ ${commandLine} &`);
    const child = spawn('sh', ['-c', `exec ${commandLine}`], { cwd: app, env: userEnvironment, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout!.on('data', chunk => output += chunk);
    child.stderr!.on('data', chunk => output += chunk);
    const exit = new Promise<number | string>(resolve => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    return { child, output: () => output, exit };
}

async function waitForListening(broker: Broker): Promise<{ url: string, port: number, seconds: number }> {
    const started = process.hrtime.bigint();
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new StepFailed(`the broker did not listen within 60 s\n${broker.output()}`)), 60000);
        const check = () => {
            const match = /listening on (ws:\/\/127\.0\.0\.1:(\d+))/.exec(broker.output());
            if (!match) return;
            clearTimeout(timer);
            resolve({ url: match[1], port: Number(match[2]), seconds: Number(process.hrtime.bigint() - started) / 1e9 });
        };
        broker.child.stdout!.on('data', check);
        broker.child.stderr!.on('data', check);
        void broker.exit.then(code => reject(new StepFailed(`the broker exited (${code}) before it listened\n${broker.output()}`)));
    });
}

/** The processes below `pid` (Linux). */
function descendants(pid: number): number[] {
    let children: number[] = [];
    try {
        children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
        // gone
    }
    return children.flatMap(child => [child, ...descendants(child)]);
}

function isAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

/**
 * Ctrl-C in a terminal: SIGINT to the foreground process group (npx, the shell npx starts, the broker). npx and its
 * shell end at once (the terminal shows 130), the broker once it has flushed: this waits for all of them.
 */
async function pressCtrlC(broker: Broker): Promise<void> {
    const processes = descendants(broker.child.pid!);
    process.kill(-broker.child.pid!, 'SIGINT');
    await broker.exit;
    const deadline = Date.now() + 20000;
    while (processes.some(isAlive)) {
        if (Date.now() > deadline) fail('the broker still runs 20 s after Ctrl-C', broker.output());
        await new Promise(resolve => setTimeout(resolve, 50));
    }
    if (!broker.output().includes('SIGINT: stopping')) fail('the broker did not say it was stopping on Ctrl-C', broker.output());
    console.log('Ctrl-C: the broker stopped');
}

/** A signal to the broker's own process, as a service manager sends it: it must flush and exit 0. */
async function signalBroker(broker: Broker, signal: 'SIGINT' | 'SIGTERM'): Promise<void> {
    broker.child.kill(signal);
    const code = await broker.exit;
    if (code !== 0) fail(`the broker exited with ${code} on ${signal}, not 0`, broker.output());
    // SIGTERM drains first (peers are told to move to another broker), SIGINT stops at once.
    if (!new RegExp(`${signal}: (stopping|draining)`).test(broker.output())) fail(`the broker did not say it was stopping on ${signal}`, broker.output());
    console.log(`${signal}: the broker stopped, exit code 0`);
}

/** The broker serves its dashboard's script, bundled at build time: nothing installed compiles or bundles it. */
async function checkDashboard(app: string, port: number): Promise<void> {
    if (existsSync(join(app, 'node_modules/esbuild')) || existsSync(join(app, 'node_modules/ts-node'))) fail('esbuild or ts-node got installed: the broker must not need them');
    const response = await fetch(`http://127.0.0.1:${port}/dashboard.js`);
    const script = await response.text();
    if (response.status !== 200 || script.length < 10000) fail(`/dashboard.js answered ${response.status} with ${script.length} bytes`, script.slice(0, 500));
    console.log(`the dashboard's script is served (${script.length} bytes), with neither esbuild nor ts-node installed`);
}

/** What a command printed, less npm's warnings about this machine's npm configuration (npx prints them too). */
function printed(result: { stdout: string, stderr: string }): string[] {
    return `${result.stdout}${result.stderr}`.trim().split('\n').filter(line => !line.startsWith('npm warn'));
}

function killGroup(broker: Broker): void {
    try {
        process.kill(-broker.child.pid!, 'SIGKILL');
    } catch {
        // gone already
    }
}

function portIsFree(port: number): Promise<boolean> {
    return new Promise(resolve => {
        const server = createServer();
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
}

/** The binary's command line, as a user meets it before starting anything. */
function checkCommandLine(app: string): void {
    const help = run('npx switchboard --help', app);
    for (const command of ourCommands) if (!help.includes(command)) fail(`--help does not list ${command}`, help);
    if (/server:start|migration:|debug:/.test(help)) fail('--help lists Deepkit\'s own commands', help);
    if (help.includes('\x1b[')) fail('--help writes colour codes into a pipe', help);
    const unknown = spawnSync('sh', ['-c', 'npx switchboard start --prot 4100'], { cwd: app, env: userEnvironment, encoding: 'utf8' });
    const lines = printed(unknown);
    if (unknown.status !== 2 || lines.length !== 1) fail(`an unknown flag gave exit code ${unknown.status} and ${lines.length} lines, not 2 and one`, lines.join('\n'));
    console.log('--help lists our commands only, without colour codes; an unknown flag is one line and exit code 2');
}

async function checkPortInUse(app: string, port: number): Promise<void> {
    const result = spawnSync('sh', ['-c', `npx switchboard start --port ${port} --database :memory:`], { cwd: app, env: userEnvironment, encoding: 'utf8' });
    const lines = printed(result);
    if (result.status !== 1 || lines.length !== 1 || !lines[0].includes('in use')) fail(`a port in use gave exit code ${result.status} and this, not one line and exit code 1`, lines.join('\n'));
    console.log(`a port in use: one line, exit code 1 ("${lines[0].slice(0, 60)}…")`);
}

async function main(): Promise<void> {
    const work = mkdtempSync(join(tmpdir(), 'switchboard-pack-check-'));
    const app = join(work, 'app');
    mkdirSync(app);
    const startedAt = Date.now();
    let broker: Broker | undefined;
    try {
        const readme = (() => {
            try {
                return readReadmeSection(repository, '## Use it in your app', ['ts', 'json']);
            } catch (error) {
                return fail((error as Error).message);
            }
        })();

        step('build and pack the four packages');
        // --no-build: pack the dist/ folders as the last build left them.
        if (!process.argv.includes('--no-build')) run('npm run build --silent', repository);
        const tarballs = pack(join(work, 'tarballs'));

        const protocolAdded = { done: false };
        let brokerUrl: string | undefined;
        let brokerPort = 0;
        for (const item of readme) {
            if ('path' in item) {
                const { path, content } = item;
                step(`write ${path} (README)`);
                mkdirSync(dirname(join(app, path)), { recursive: true });
                writeFileSync(join(app, path), content);
                continue;
            }
            for (const line of item.commands) {
                if (/^npx switchboard start\b/.test(line)) {
                    checkCommandLine(app);
                    step(`${line} (README; here on a free port)`);
                    broker = startBroker(`${line} --port 0`, app);
                    const listening = await waitForListening(broker);
                    brokerUrl = listening.url;
                    brokerPort = listening.port;
                    console.log(`listening on ${listening.url} ${listening.seconds.toFixed(2)} s after \`npx switchboard start\``);
                    await checkPortInUse(app, listening.port);
                    await checkDashboard(app, listening.port);
                    continue;
                }
                step(`${line} (README)`);
                const command = brokerUrl ? line.replace('ws://127.0.0.1:8080', brokerUrl) : line;
                const output = run(withTarballs(command, tarballs, protocolAdded), app);
                // The warning our own dependencies gave on Node 20 (README: `overrides`).
                if (/EBADENGINE/.test(output)) fail('npm warned about an engine', output);
                if (/^npm install\b/.test(line)) checkExactDeepkit(app);
                if (/^node dist\/main\.js\b/.test(line)) {
                    for (const expected of ['Hello Alice (asked by alice)', 'Hello Bob (asked by bob)']) {
                        if (!output.includes(expected)) fail(`the two peers' calls did not print "${expected}"`, output);
                    }
                    console.log(output.trim());
                    step('Ctrl-C stops the broker; so do SIGINT and SIGTERM to node_modules/.bin/switchboard, with exit code 0');
                    await pressCtrlC(broker!);
                    if (!await portIsFree(brokerPort)) fail('the port is still taken after Ctrl-C');
                    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
                        broker = startBroker('node_modules/.bin/switchboard start --port 0 --database :memory:', app);
                        const { port } = await waitForListening(broker);
                        await signalBroker(broker, signal);
                        if (!await portIsFree(port)) fail(`port ${port} is still taken after the broker stopped`);
                    }
                    broker = undefined;
                }
                if (/^npx deepkit-type-install\b/.test(line)) checkSingleCopies(app);
                if (/^npx tsc\b/.test(line)) checkRuntimeTypes(app);
            }
        }
        if (!brokerUrl) fail('README.md never starts the broker (npx switchboard start)');
        rmSync(work, { recursive: true, force: true });
        console.log(`\npack-check passed in ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
    } catch (error) {
        if (broker && broker.child.exitCode === null) killGroup(broker);
        const message = error instanceof StepFailed ? error.message : (error as Error).stack;
        console.error(`\npack-check FAILED at step ${steps.number}: ${message}\n(the app is kept in ${app})`);
        process.exit(1);
    }
}

void main();
