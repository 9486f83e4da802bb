import { SingleBar } from 'cli-progress';
import { connectPeer, exampleArgs, exit, explain, say } from '../shared/connect';

const usage = `Usage: npm run fetch -- --id <you> <peer> <fileId> <destination> [--url …] [--token …]

Downloads a file another peer shares, verifying every chunk and the whole file (SHA-256). Interrupt it with Ctrl-C
and run the same command again: it resumes where it stopped.`;

/** Binary megabytes, labelled MiB: 1 MiB = 1,048,576 bytes. */
function mebibytes(bytes: number): string {
    return (bytes / 1024 / 1024).toFixed(1);
}

async function main(): Promise<void> {
    const args = exampleArgs(usage);
    const [from, fileId, destination] = args.positionals;
    if (!from || !fileId || !destination) exit(2, usage);
    const peer = await connectPeer(args);
    const bar = new SingleBar({
        format: '{bar} {percentage}% | {doneMib}/{totalMib} MiB | {rate} MiB/s',
        noTTYOutput: !process.stdout.isTTY,
        notTTYSchedule: 500,
    });
    let started = false;
    const subscription = peer.files.download(from, fileId, destination).subscribe({
        next: progress => {
            const values = { doneMib: mebibytes(progress.bytes), totalMib: mebibytes(progress.totalBytes), rate: mebibytes(progress.bytesPerSecond) };
            if (!started) {
                started = true;
                if (progress.resumedFrom) say(`Resuming ${progress.name} from chunk ${progress.resumedFrom} of ${progress.totalChunks}`);
                bar.start(progress.totalBytes, progress.bytes, values);
            }
            bar.update(progress.bytes, values);
            if (progress.state === 'done') {
                bar.stop();
                say(`${progress.fromCache ? 'Copied from the local cache' : 'Downloaded'}: ${destination} (${progress.totalBytes} bytes), SHA-256 verified` +
                    (progress.refetched ? `, ${progress.refetched} corrupt chunk(s) fetched again` : ''));
            }
        },
        // An observer's return value is ignored: exit in finally, so a failing close cannot keep the program alive.
        error: error => {
            bar.stop();
            void peer.close().finally(() => exit(1, `Download failed: ${explain(error, args)} Run the same command again to resume.`));
        },
        complete: () => void peer.close().finally(() => process.exit(0)),
    });
    process.removeAllListeners('SIGINT');
    process.once('SIGINT', () => {
        subscription.unsubscribe();
        bar.stop();
        say('Interrupted. Run the same command again to resume.');
        void peer.close().finally(() => process.exit(130));
    });
}

void main();
