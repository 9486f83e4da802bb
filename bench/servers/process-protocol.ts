import { writeFileSync } from 'fs';
import { Session } from 'inspector';

/**
 * How a benchmark server talks to the harness: it prints one JSON line `{"port": …}` when it listens, answers
 * `rss` on stdin with `{"rss": <bytes>}`, starts a V8 CPU profile on `profile <path>` (written to that path when it
 * stops: startup and module loading stay out of it), and exits when stdin closes. `rss` also answers the heap used and
 * external memory (after the same GC): what the process retains, without the young generation V8 keeps committed.
 */
export function serveBenchmark(port: number, close: () => Promise<unknown> | unknown): void {
    process.stdout.write(JSON.stringify({ port }) + '\n');
    let profile: { session: Session, path: string } | undefined;
    let input = '';
    process.stdin.on('data', chunk => {
        input += chunk;
        let newline: number;
        while ((newline = input.indexOf('\n')) >= 0) {
            const command = input.slice(0, newline).trim();
            input = input.slice(newline + 1);
            if (command === 'rss') {
                global.gc?.();
                const { rss, heapUsed, external } = process.memoryUsage();
                process.stdout.write(JSON.stringify({ rss, heapUsed, external }) + '\n');
            } else if (command.startsWith('profile ') && !profile) {
                profile = { session: new Session(), path: command.slice('profile '.length) };
                profile.session.connect();
                profile.session.post('Profiler.enable', () => profile!.session.post('Profiler.start'));
            }
        }
    });
    // An EventEmitter ignores a listener's promise: a failed close surfaces as an unhandled rejection (exit 1).
    process.stdin.on('end', () => void (async () => {
        if (profile) await writeProfile(profile.session, profile.path);
        await close();
        process.exit(0);
    })());
}

function writeProfile(session: Session, path: string): Promise<void> {
    return new Promise(resolve => session.post('Profiler.stop', (error, result) => {
        if (!error) writeFileSync(path, JSON.stringify(result.profile));
        session.disconnect();
        resolve();
    }));
}
