/**
 * A browser peer: registers with the broker over the browser's own WebSocket, shows who is online, chats with
 * delivery status, and edits one shared Yjs document with every other web peer. The SDK is the same one Node apps
 * use; its storage is Deepkit's in-memory ORM adapter copied to the tab's sessionStorage.
 */
import { filter, firstValueFrom } from 'rxjs';
import { Peer, WebStorageAdapter } from '@switchboard/peer';
import { ChatEntry, Disconnected, PeerInfo, PresenceEvent } from '@switchboard/protocol';
import { bindTextarea } from './text-binding';

const DOCUMENT = 'web-notes';
const WEB = 'web';

const params = new URLSearchParams(location.search);
const brokerUrl = params.get('broker') || document.querySelector<HTMLMetaElement>('meta[name="switchboard-broker"]')!.content;
/** For a broker in token mode: `#token=…`, in the fragment so it never reaches a server log. */
const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? undefined;
const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

let peer: Peer;
let selected: string | undefined;
const members = new Map<string, boolean>();
const messages = new Map<string, ChatEntry>();

function element(tag: string, text = '', attributes: Record<string, string> = {}): HTMLElement {
    const node = document.createElement(tag);
    node.textContent = text;
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
}

async function join(id: string): Promise<void> {
    byId('join-error').textContent = '';
    let joining: Peer | undefined;
    try {
        // Per tab (sessionStorage): history, queued messages and the reclaim secret survive a reload of this tab.
        const storage = new WebStorageAdapter(`switchboard-peer:${id}`, sessionStorage);
        // Several brokers of one cluster, comma-separated: the peer fails over between them.
        // presence 'all': the page lists every peer of the broker, not only those this tab dealt with.
        peer = joining = Peer.create({ url: brokerUrl.split(',').map(url => url.trim()).filter(url => url), id, token, storage, presence: 'all', capabilities: ['chat', 'collab', WEB] });
        // Subscribed before connecting, so messages queued for us while we were away are shown too.
        peer.state$.subscribe(state => byId('state').textContent = state);
        peer.presence$.subscribe(onPresence);
        peer.chat.updates$.subscribe(onChat);
        await peer.start();
    } catch (error) {
        byId('join-error').textContent = (error as Error).message;
        await joining?.close().catch(() => undefined);
        return;
    }
    history.replaceState(null, '', `?${new URLSearchParams({ ...Object.fromEntries(params), id })}${location.hash}`);
    byId('me').textContent = `you are ${id}`;
    byId('join').hidden = true;
    byId('app').hidden = false;
    const known = await listOtherPeers(id);
    if (!known) return;
    for (const info of known) members.set(info.id, info.online);
    renderMembers();

    const webPeersOnline = known.filter(info => info.online && info.capabilities.includes(WEB)).map(info => info.id);
    const notes = await peer.collab.open(DOCUMENT, { collaborators: webPeersOnline });
    const textarea = byId<HTMLTextAreaElement>('doc');
    bindTextarea(textarea, notes.text);
    // Enabled only now: what is typed before the binding exists would be overwritten by the document.
    textarea.disabled = false;
}

/**
 * The broker's other peers. The broker may go away right after registering (a restart): the call then fails with
 * Disconnected, and is made again once the peer, which reconnects by itself, is registered again. Undefined if the
 * peer stopped for good (closed, or its ID taken over: the state shows it).
 */
async function listOtherPeers(id: string): Promise<PeerInfo[] | undefined> {
    for (;;) {
        try {
            return (await peer.broker.listPeers()).filter(info => info.id !== id);
        } catch (error) {
            if (!(error instanceof Disconnected)) throw error;
            const state = await firstValueFrom(peer.state$.pipe(filter(s => s === 'registered' || s === 'closed' || s === 'replaced')));
            if (state !== 'registered') return undefined;
        }
    }
}

function onPresence(event: PresenceEvent): void {
    if (event.peerId === peer.id || event.kind === 'synced') return;
    if (event.kind === 'online' || event.kind === 'offline') members.set(event.peerId, event.kind === 'online');
    // A web peer that comes (back) online edits the same document.
    if (event.kind !== 'offline' && event.capabilities.includes(WEB)) void peer.collab.open(DOCUMENT, { collaborators: [event.peerId] });
    renderMembers();
}

function onChat(entry: ChatEntry): void {
    messages.set(entry.id, entry);
    if (entry.direction === 'in' && !selected) void select(entry.peerId);  // as a click on the member does
    else if (entry.peerId === selected) renderMessages();
    if (entry.direction === 'in' && entry.peerId === selected && entry.status === 'delivered') void markRead([entry]);
}

async function markRead(entries: ChatEntry[]): Promise<void> {
    const unread = entries.filter(entry => entry.direction === 'in' && entry.status === 'delivered');
    if (unread.length) await peer.chat.markRead(unread[0].peerId, unread.map(entry => entry.id)).catch(() => undefined);
}

async function select(peerId: string): Promise<void> {
    selected = peerId;
    byId('conversation').textContent = `Chat with ${peerId}`;
    byId<HTMLInputElement>('chat-input').disabled = false;
    byId<HTMLButtonElement>('send').disabled = false;
    renderMembers();
    const conversation = await peer.chat.history(peerId);
    for (const entry of conversation) messages.set(entry.id, entry);
    renderMessages();
    await markRead(conversation);
}

function renderMembers(): void {
    const items = [...members].sort(([a, onlineA], [b, onlineB]) => Number(onlineB) - Number(onlineA) || a.localeCompare(b)).map(([id, online]) => {
        const item = element('li', id, { 'data-peer': id, 'data-online': String(online), 'aria-selected': String(id === selected) });
        item.addEventListener('click', () => void select(id));
        return item;
    });
    byId('members').replaceChildren(...(items.length ? items : [element('li', 'Nobody else yet.')]));
}

function renderMessages(): void {
    const conversation = [...messages.values()]
        .filter(entry => entry.peerId === selected && !entry.groupId)
        .sort((a, b) => new Date(a.sentAt).getTime() - new Date(b.sentAt).getTime());
    byId('messages').replaceChildren(...conversation.map(entry => {
        const item = element('li', entry.text, { 'data-id': entry.id, 'data-direction': entry.direction, 'data-status': entry.status });
        if (entry.direction === 'out') item.append(element('span', entry.status, { class: 'status' }));
        return item;
    }));
    byId('messages').lastElementChild?.scrollIntoView({ block: 'end' });
}

byId<HTMLFormElement>('join').addEventListener('submit', event => {
    event.preventDefault();
    void join(byId<HTMLInputElement>('peer-id').value.trim());
});

byId<HTMLFormElement>('chat-form').addEventListener('submit', event => {
    event.preventDefault();
    const input = byId<HTMLInputElement>('chat-input');
    const text = input.value.trim();
    if (!text || !selected) return;
    input.value = '';
    peer.chat.send(selected, text).catch(error => alert((error as Error).message));
});

const preset = params.get('id');
if (preset) {
    byId<HTMLInputElement>('peer-id').value = preset;
    void join(preset);
}
