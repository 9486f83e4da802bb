import { connectPeer, exampleArgs, exit, explain, say } from '../shared/connect';

const usage = `Usage: npm run share -- --id <you> <file> [--url …] [--token …]

Shares <file> with other peers until you press Ctrl-C.`;

async function main(): Promise<void> {
    const args = exampleArgs(usage);
    const path = args.positionals[0];
    if (!path) exit(2, `Which file? ${usage}`);
    const peer = await connectPeer(args);
    try {
        const info = await peer.files.share(path);
        say(`Sharing ${info.name} (${info.size} bytes, SHA-256 ${info.sha256}) as ${info.id}`);
        say(`Fetch it with: npm run fetch -- --id <you> ${args.id} ${info.id} ./${info.name}`);
        say('Press Ctrl-C to stop sharing.');
    } catch (error) {
        await peer.close();
        exit(1, explain(error, args));
    }
}

void main();
