import { createInterface } from 'readline';
import { CollabDocument } from '@switchboard/peer';
import { connectPeer, exampleArgs, explain, say } from '../shared/connect';

const usage = `Usage: npm run collab -- --id <you> --doc <name> [--with <peer,peer>] [--url …] [--token …]

Edit a shared document line by line; everyone with the same --doc sees your edits, including edits made while
someone was disconnected.

Commands:
  p                      print the document
  a <text>               append a line
  i <n> <text>           insert a line before line n
  r <n> <text>           replace line n
  d <n>                  delete line n
  who                    your collaborators, online or not
  help, q`;

/** Character offsets of each line's start, and the text's total length. */
function lineStarts(text: string): number[] {
    const starts = [0];
    for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
    return starts;
}

function lines(document: CollabDocument): string[] {
    const text = document.toString();
    return text ? text.replace(/\n$/, '').split('\n') : [];
}

function print(document: CollabDocument, heading: string): void {
    say(`--- ${heading} ---`);
    lines(document).forEach((line, i) => say(`${String(i + 1).padStart(3)} | ${line}`));
    say('---');
}

async function main(): Promise<void> {
    const args = exampleArgs(usage, { doc: { type: 'string' }, with: { type: 'string' } });
    const docId = args.values.doc as string | undefined;
    if (!docId) {
        process.stderr.write(`Missing --doc.\n${usage}\n`);
        process.exit(2);
    }
    const collaborators = String(args.values.with ?? '').split(',').map(p => p.trim()).filter(Boolean);
    const peer = await connectPeer(args);
    const document = await peer.collab.open(docId, { collaborators }).catch(error => {
        process.stderr.write(explain(error, args) + '\n');
        return process.exit(1);
    });
    print(document, `${docId} (you are ${args.id})`);
    document.remoteUpdates$.subscribe(({ from }) => print(document, `${docId}, changed by ${from}`));

    const edit = (command: string, rest: string): void => {
        const text = document.toString();
        const starts = lineStarts(text);
        const count = lines(document).length;
        const [first, ...words] = rest.split(' ');
        const n = Number(first);
        const needsLine = command !== 'a';
        if (needsLine && (!Number.isInteger(n) || n < 1 || n > (command === 'i' ? count + 1 : count))) {
            return say(`No line ${first || '?'}: the document has ${count} line(s).`);
        }
        const body = needsLine ? words.join(' ') : rest;
        document.doc.transact(() => {
            if (command === 'a') {
                const end = text.length && !text.endsWith('\n') ? '\n' : '';
                document.text.insert(text.length, `${end}${body}\n`);
            } else if (command === 'i') {
                document.text.insert(starts[n - 1] ?? text.length, `${body}\n`);
            } else {
                const start = starts[n - 1];
                const end = n < starts.length ? starts[n] : text.length;
                document.text.delete(start, end - start);
                if (command === 'r') document.text.insert(start, `${body}\n`);
            }
        });
        print(document, `${docId}, your edit`);
    };

    const input = createInterface({ input: process.stdin });
    input.on('line', line => {
        const text = line.trim();
        if (!text) return;
        const space = text.indexOf(' ');
        const command = space < 0 ? text : text.slice(0, space);
        const rest = space < 0 ? '' : text.slice(space + 1);
        try {
            if (command === 'p') return print(document, docId);
            if (command === 'help') return say(usage);
            if (command === 'q') return void peer.close().then(() => process.exit(0));
            if (command === 'who') {
                for (const id of document.collaborators) say(`  ${peer.discovery.isOnline(id) ? 'online ' : 'offline'} ${id}`);
                return;
            }
            if (['a', 'i', 'r', 'd'].includes(command)) return edit(command, rest);
            say(`Unknown command "${command}". Type help.`);
        } catch (error) {
            say(`! ${explain(error, args)}`);
        }
    });
    input.on('close', () => void peer.close().then(() => process.exit(0)));
}

void main();
