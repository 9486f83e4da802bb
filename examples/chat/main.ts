import { createInterface } from 'readline';
import { MaxLength } from '@deepkit/type';
import { ChatEntry, ChatGroupInfo, PeerNotFound } from '@switchboard/protocol';
import { Peer, ReplicatedMap, replicatedState } from '@switchboard/peer';
import { connectPeer, exampleArgs, explain, say } from '../shared/connect';

const usage = `Usage: npm run chat -- --id <you> [--url ws://127.0.0.1:8080] [--token <token>] [--storage <file>]

Commands:
  /peers                          who is known, online or offline (live)
  /msg <peer> <text>              direct message (or: @<peer> <text>)
  /history <peer>                 the conversation with <peer>
  /group create <name> <a,b,…>    create a group and tell its members
  /group invite <name> <peer>     add a member
  /group send <name> <text>       message every member
  /group topic <name> <text>      set the group's topic (replicated state: every member sees it, also later)
  /groups                         groups you are in
  /keys [<peer>]                  your key's fingerprint (and <peer>'s): compare them out loud; chats are sealed
  /trust <peer>                   accept <peer>'s new key, after comparing fingerprints
  /help, /quit`;

/** A group's settings live in a replicated map among its members (peer feature `replicatedState()`). */
type Topic = string & MaxLength<200>;
const features = { state: replicatedState() };

async function main(): Promise<void> {
    const args = exampleArgs(usage);
    const online = new Map<string, boolean>();
    // Not named `groups`: the /groups command is a method of that name, which would hide it inside its own body.
    const groupsByName = new Map<string, ChatGroupInfo>();
    // Messages can arrive while we connect (the queued ones): `show` uses the peer handed to `prepare`, and holds
    // them until "Connected" is printed.
    let peer!: Peer<typeof features>;
    let connected = false;
    const heldBack: ChatEntry[] = [];
    const settings = new Map<string, ReplicatedMap<Topic>>();
    await connectPeer(args, created => {
        peer = created;
        peer.presence$.subscribe(event => {
            if (event.kind !== 'online' && event.kind !== 'offline') return;
            const wasOnline = online.get(event.peerId);
            online.set(event.peerId, event.kind === 'online');
            if (event.sequence > 0 && wasOnline !== (event.kind === 'online') && event.peerId !== args.id) say(`* ${event.peerId} is ${event.kind}`);
        });
        peer.chat.updates$.subscribe(entry => void show(entry));
        peer.sealing.keyChanged$.subscribe(change => say(`! The key of ${change.peerId} CHANGED (was ${change.pinnedFingerprint}, now ${change.offeredFingerprint}). Nothing is sealed to or accepted from it until you compare fingerprints with them (/keys ${change.peerId}) and /trust ${change.peerId}.`));
        peer.chat.groups$.subscribe(group => {
            groupsByName.set(group.name, group);
            if (group.owner !== args.id) say(`* ${group.owner} added you to group "${group.name}" (${group.members.join(', ')})`);
            followSettings(group).catch(error => say(`! ${explain(error, args)}`));
        });
    }, features);
    for (const group of await peer.chat.groups()) {
        groupsByName.set(group.name, group);
        await followSettings(group);
    }
    for (const known of await peer.broker.listPeers()) if (!online.has(known.id)) online.set(known.id, known.online);
    say(`Connected to ${peer.brokerUrl ?? args.url} as ${args.id}. Type /help for commands.`);
    connected = true;
    for (const entry of heldBack.splice(0)) await show(entry);

    /** Opens the group's settings with its members (again when members change) and shows what others set. */
    async function followSettings(group: ChatGroupInfo): Promise<ReplicatedMap<Topic>> {
        const map = await peer.features.state.open<Topic>(`group-${group.id}`, { members: group.members });
        if (!settings.has(group.id)) {
            settings.set(group.id, map);
            map.changes$.subscribe(change => {
                if (change.by !== 'local' && change.key === 'topic') say(`* [${group.name}] topic: ${change.value} (set by ${change.by})`);
            });
        }
        return map;
    }

    /** Incoming messages are shown once and marked read, so the sender sees "read". */
    async function show(entry: ChatEntry): Promise<void> {
        if (!connected) return void heldBack.push(entry);
        if (entry.direction === 'in' && entry.status === 'delivered') {
            const group = entry.groupId ? [...groupsByName.values()].find(g => g.id === entry.groupId) : undefined;
            say(`${group ? `[${group.name}] ` : ''}${entry.peerId}: ${entry.text}`);
            await peer.chat.markRead(entry.peerId, [entry.id]).catch(() => undefined);
        }
        // The path it took: [direct] link, [broker], [relay] peer, or waiting in your [outbox].
        if (entry.direction === 'out' && entry.status !== 'sending') say(`  (${entry.peerId}) "${short(entry.text)}" ${entry.status}${entry.path ? ` [${entry.path}]` : ''}`);
    }

    /**
     * Whether the broker's registry knows `peerId` (online, or offline and kept). A message to a known peer that is
     * offline is queued; to an ID that never registered it would wait forever. With the broker down, nobody can
     * tell: the message is queued.
     */
    async function knownToBroker(peerId: string): Promise<boolean> {
        if (peer.state !== 'registered') return true;
        try {
            await peer.broker.getPeer(peerId);
            return true;
        } catch (error) {
            return !(error instanceof PeerNotFound);
        }
    }

    const commands: Record<string, (rest: string) => Promise<void>> = {
        async help() {
            say(usage);
        },
        async peers() {
            if (!online.size) return say('No peers known yet.');
            for (const [id, isOnline] of [...online].sort()) if (id !== args.id) say(`  ${isOnline ? 'online ' : 'offline'} ${id}`);
        },
        async msg(rest) {
            const [to, ...words] = rest.split(' ');
            if (!to || !words.length) return say('Usage: /msg <peer> <text>');
            if (!online.has(to) && !await knownToBroker(to)) {
                return say(`! No peer "${to}" is known to the broker: it never registered. Check the ID; /peers lists who is known.`);
            }
            await peer.chat.send(to, words.join(' '));
        },
        async keys(rest) {
            say(`  you: ${await peer.sealing.fingerprint() ?? 'sealing is off'}`);
            if (rest) say(`  ${rest}: ${await peer.sealing.contactFingerprint(rest) ?? 'no key (its messages travel in plaintext)'}`);
        },
        async trust(rest) {
            if (!rest) return say('Usage: /trust <peer>');
            const fingerprint = await peer.sealing.trust(rest);
            say(fingerprint ? `* ${rest}'s key ${fingerprint} is trusted now.` : `* ${rest}'s key will be pinned again when next seen.`);
        },
        async history(rest) {
            if (!rest) return say('Usage: /history <peer>');
            for (const entry of await peer.chat.history(rest)) say(`  ${entry.direction === 'in' ? rest : 'you'}: ${entry.text} (${entry.status}${entry.path ? `, ${entry.path}` : ''})`);
        },
        async groups() {
            if (!groupsByName.size) return say('No groups yet.');
            for (const group of groupsByName.values()) {
                const topic = settings.get(group.id)?.get('topic');
                say(`  ${group.name}: ${group.members.join(', ')} (owner ${group.owner})${topic ? ` topic: ${topic}` : ''}`);
            }
        },
        async group(rest) {
            const [action, name, ...more] = rest.split(' ');
            if (action === 'create' && name && more[0]) {
                const group = await peer.chat.createGroup(name, more[0].split(',').map(m => m.trim()).filter(Boolean));
                groupsByName.set(group.name, group);
                await followSettings(group);
                return say(`Group "${name}" created: ${group.members.join(', ')}`);
            }
            const group = name ? groupsByName.get(name) : undefined;
            if ((action === 'invite' || action === 'send' || action === 'topic') && !group) return say(`No group "${name}". /groups lists yours.`);
            if (action === 'invite' && more[0]) {
                const updated = await peer.chat.invite(group!.id, more[0]);
                groupsByName.set(updated.name, updated);
                await followSettings(updated);
                return say(`Invited ${more[0]} to "${name}".`);
            }
            if (action === 'send' && more.length) {
                const result = await peer.chat.sendToGroup(group!.id, more.join(' '));
                return say(`Sent to "${name}": ${result.sent} delivered, ${result.queued} queued, ${result.failed} failed`);
            }
            if (action === 'topic' && more.length) {
                (await followSettings(group!)).set('topic', more.join(' '));
                return say(`Topic of "${name}" set.`);
            }
            say('Usage: /group create <name> <a,b,…> | /group invite <name> <peer> | /group send <name> <text> | /group topic <name> <text>');
        },
        async quit() {
            await peer.close();
            process.exit(0);
        },
    };

    const input = createInterface({ input: process.stdin });
    input.on('line', line => {
        const text = line.trim();
        if (!text) return;
        let command: string;
        let rest: string;
        if (text.startsWith('@')) {
            command = 'msg';
            rest = text.slice(1);
        } else if (text.startsWith('/')) {
            [command, rest] = splitOnce(text.slice(1));
        } else {
            return say('Messages start with @<peer>, commands with /. Type /help.');
        }
        const handler = commands[command];
        if (!handler) return say(`Unknown command /${command}. Type /help.`);
        handler(rest).catch(error => say(`! ${explain(error, args)}`));
    });
    input.on('close', () => void commands.quit(''));
}

function splitOnce(text: string): [string, string] {
    const space = text.indexOf(' ');
    return space < 0 ? [text, ''] : [text.slice(0, space), text.slice(space + 1).trim()];
}

function short(text: string): string {
    return text.length > 40 ? text.slice(0, 37) + '…' : text;
}

void main();
