import { Peer } from '../../peer';

/**
 * A download in a process of its own that dies (SIGKILL, as on a crash or power loss) once `killAfter` chunks are
 * verified: nothing gets a chance to record its progress on the way out.
 * Usage: files-download-process.ts <url> <storage> <peer> <fileId> <destination> <killAfter>
 */
const [url, storage, from, fileId, destination, killAfter] = process.argv.slice(2);

Peer.connect({ url, id: 'alice', storage }).then(peer => {
    peer.files.download(from, fileId, destination).subscribe({
        next: progress => {
            if (progress.chunks >= Number(killAfter)) process.kill(process.pid, 'SIGKILL');
        },
        error: error => {
            console.error(error);
            process.exit(1);
        },
        complete: () => {
            console.error(`The download completed before chunk ${killAfter}.`);
            process.exit(2);
        },
    });
}, error => {
    console.error(error);
    process.exit(1);
});
