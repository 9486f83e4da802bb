/**
 * The dashboard page's script (bundled for the browser by the broker on first request). It opens one RPC connection
 * to the broker that served the page and renders the `dashboard()` stream; nothing is polled.
 */
import { RpcWebSocketClient } from '@deepkit/rpc';
import { Observable, Subscription } from 'rxjs';
import { AuditRecord, BrokerActivity, BrokerApi, DashboardEvent, PeerInfo } from '@switchboard/protocol';
import { addSamples, renderCharts, resetSamples } from './trend-charts';

const TOKEN_KEY = 'switchboard-dashboard-token';
const peers = new Map<string, PeerInfo>();
const audit: AuditRecord[] = [];
const AUDIT_SHOWN = 50;
/** More rows than this make every redraw slow; the tiles still count every peer. */
const PEERS_SHOWN = 500;
const CONNECT_TIMEOUT_MS = 5000;
const FIRST_RETRY_MS = 500;
const LAST_RETRY_MS = 5000;

let client: RpcWebSocketClient | undefined;
/** Deepkit's client holds a stream only weakly: keep it for as long as it is rendered. */
let stream: Observable<DashboardEvent> | undefined;
let subscription: Subscription | undefined;
let attempts = 0;
let retryDelay = FIRST_RETRY_MS;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
/** What changed since the last frame: drawn once per frame, however many events arrived. */
const redraw = new Set<() => void>();
let frameRequested = false;
/** The broker serving this page, marked in the broker and peer tables. */
let ownBrokerId = '';

const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function element(tag: string, text = '', attributes: Record<string, string> = {}): HTMLElement {
    const node = document.createElement(tag);
    node.textContent = text;
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
}

function takeToken(): string | undefined {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
    if (fromHash) {
        sessionStorage.setItem(TOKEN_KEY, fromHash);
        history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

function setConnection(state: 'live' | 'down' | 'connecting', text: string): void {
    const node = byId('connection');
    node.dataset.state = state;
    node.textContent = text;
}

function showLogin(message: string): void {
    byId('login').hidden = false;
    byId('error').textContent = message;
}

/**
 * One attempt to connect and follow the stream. Each attempt has a number; a failure, error or disconnect of an
 * older attempt is ignored, so one lost connection leads to one retry, not one per event that reports it.
 */
async function connect(): Promise<void> {
    const attempt = ++attempts;
    clearTimeout(retryTimer);
    retryTimer = undefined;
    subscription?.unsubscribe();
    void client?.disconnect();
    const token = takeToken();
    const current = client = RpcWebSocketClient.fromCurrentHost();
    if (token) current.token.set(token);
    setConnection('connecting', 'connecting…');
    try {
        // Connect first, with a deadline: an action call on a client whose connection attempt failed can wait forever.
        await withTimeout(current.connect(), CONNECT_TIMEOUT_MS, 'no answer from the broker');
        stream = await current.controller<BrokerApi>(BrokerApi).dashboard();
    } catch (error) {
        void current.disconnect();
        const message = (error as Error).message;
        if (/token|authenticat|denied/i.test(message)) {
            setConnection('down', 'not authorised');
            return showLogin(message);
        }
        return retry(attempt, /connect/i.test(message) ? 'broker unreachable' : message);
    }
    byId('login').hidden = true;
    retryDelay = FIRST_RETRY_MS;
    setConnection('live', 'live');
    subscription = stream.subscribe({
        next: apply,
        error: error => retry(attempt, (error as Error).message),
        complete: () => retry(attempt, 'stream ended'),
    });
    current.transporter.disconnected.subscribe(() => retry(attempt, 'connection lost'));
}

function withTimeout<T>(promise: Promise<T>, milliseconds: number, message: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout>;
    const timeout = new Promise<never>((_, reject) => timer = setTimeout(() => reject(new Error(message)), milliseconds));
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function retry(attempt: number, reason: string): void {
    if (attempt !== attempts || retryTimer) return;
    setConnection('down', `${reason}; retrying in ${Math.ceil(retryDelay / 1000)} s`);
    retryTimer = setTimeout(() => void connect(), retryDelay);
    retryDelay = Math.min(retryDelay * 2, LAST_RETRY_MS);
}

function apply(event: DashboardEvent): void {
    if (event.kind === 'snapshot') {
        peers.clear();
        audit.length = 0;
        resetSamples(event.trend);
    } else {
        addSamples(event.trend);
    }
    if (event.trend.length || event.kind === 'snapshot') redraw.add(renderCharts);
    for (const peer of event.peers) peers.set(peer.id, peer);
    audit.push(...event.audit);
    audit.splice(0, Math.max(0, audit.length - AUDIT_SHOWN));
    if (event.peers.length || event.kind === 'snapshot') redraw.add(renderPeers);
    if (event.activity) {
        const activity = event.activity;
        redraw.add(() => renderActivity(activity));
    }
    if (event.audit.length || event.kind === 'snapshot') redraw.add(renderAudit);
    if (!frameRequested) {
        frameRequested = true;
        requestAnimationFrame(() => {
            frameRequested = false;
            const renders = [...redraw];
            redraw.clear();
            for (const render of renders) render();
        });
    }
}

function renderPeers(): void {
    const sorted = [...peers.values()].sort((a, b) => Number(b.online) - Number(a.online) || a.id.localeCompare(b.id));
    const rows = sorted.slice(0, PEERS_SHOWN)
        .map(peer => {
            const row = element('tr', '', { 'data-peer': peer.id, 'data-online': String(peer.online) });
            row.append(element('td', peer.id), element('td', peer.online ? 'online' : 'offline', { class: 'state' }));
            row.append(element('td', peer.brokerId ? brokerName(peer.brokerId) : '', { title: peer.brokerId ?? '' }));
            const capabilities = element('td');
            for (const capability of peer.capabilities) capabilities.append(element('span', capability, { class: 'cap' }));
            row.append(capabilities, element('td', peer.online && peer.connectedSince ? `since ${time(peer.connectedSince)}` : `last seen ${time(peer.lastSeen)}`));
            return row;
        });
    if (sorted.length > PEERS_SHOWN) rows.push(emptyRow(`… and ${sorted.length - PEERS_SHOWN} more`, 5));
    byId('peers-online').textContent = String(sorted.filter(peer => peer.online).length);
    byId('peers-known').textContent = String(peers.size);
    byId('peers').replaceChildren(...(rows.length ? rows : [emptyRow('No peer has registered yet.', 5)]));
}

function renderActivity(activity: BrokerActivity): void {
    byId('peers-online').textContent = String(activity.peersOnline);
    byId('peers-known').textContent = String(activity.peersKnown);
    byId('calls-per-second').textContent = String(activity.callsPerSecond);
    byId('calls-routed').textContent = String(activity.callsRouted);
    byId('bytes-per-second').textContent = bytes(activity.bytesPerSecond);
    const refusals = Object.entries(activity.refusals).sort((a, b) => b[1] - a[1]);
    byId('refusals-total').textContent = String(refusals.reduce((sum, [, count]) => sum + count, 0));
    byId('uptime').textContent = `up ${duration(activity.uptimeSeconds)}`;
    renderBrokers(activity);
    byId('refusals').replaceChildren(...(refusals.length
        ? refusals.map(([code, count]) => row([code, String(count)], { 'data-reason': code }))
        : [emptyRow('None.', 2)]));
    byId('transfers').replaceChildren(...(activity.transfers.length
        ? activity.transfers.map(t => row([`${t.from} → ${t.to}`, bytes(t.bytes), `since ${time(t.since)}`]))
        : [emptyRow('None.', 3)]));
}

function renderBrokers(activity: BrokerActivity): void {
    const ownChanged = ownBrokerId !== activity.brokerId;
    ownBrokerId = activity.brokerId;
    // The peers table marks this broker's peers: redraw it once this broker is known.
    if (ownChanged) renderPeers();
    const alive = activity.brokers.filter(broker => broker.alive).length;
    byId('brokers-alive').textContent = `${alive} of ${activity.brokers.length} alive`;
    byId('brokers').replaceChildren(...activity.brokers.map(broker => {
        const heard = broker.heartbeatAgeMs === undefined || broker.brokerId === activity.brokerId ? time(broker.lastSeen) : `${(broker.heartbeatAgeMs / 1000).toFixed(1)} s ago`;
        const tr = row([brokerName(broker.brokerId), broker.alive ? 'alive' : 'dead', String(broker.peers), heard, broker.natsLink ?? '–'],
            { 'data-broker': broker.brokerId, 'data-alive': String(broker.alive), title: broker.brokerId });
        tr.children[1].className = 'state';
        return tr;
    }));
}

/** A broker's ID as a table shows it: generated IDs are UUIDs, too long for a cell; full ID in the tooltip. */
function brokerName(brokerId: string): string {
    const name = brokerId.length > 12 ? brokerId.slice(0, 8) + '…' : brokerId;
    return brokerId === ownBrokerId ? `${name} (this)` : name;
}

function renderAudit(): void {
    const items = audit.slice().reverse().map(entry => {
        const parts = [time(entry.at), entry.kind, entry.peerId ?? '-'];
        if (entry.target) parts.push('→ ' + entry.target);
        if (entry.action) parts.push(entry.action);
        if (entry.reason) parts.push(`(${entry.reason})`);
        return element('li', parts.join(' '), { 'data-kind': entry.kind });
    });
    byId('audit-events').replaceChildren(...(items.length ? items : [element('li', 'Nothing yet.', { class: 'empty' })]));
}

function row(cells: string[], attributes: Record<string, string> = {}): HTMLElement {
    const tr = element('tr', '', attributes);
    tr.append(...cells.map(cell => element('td', cell)));
    return tr;
}

function emptyRow(text: string, span: number): HTMLElement {
    const tr = element('tr');
    tr.append(element('td', text, { class: 'empty', colspan: String(span) }));
    return tr;
}

function time(date: Date): string {
    return new Date(date).toLocaleTimeString();
}

function duration(seconds: number): string {
    if (seconds < 120) return `${seconds} s`;
    if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
    return `${Math.round(seconds / 3600)} h`;
}

function bytes(count: number): string {
    if (count < 1024) return `${count} B`;
    if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
    return `${(count / 1024 / 1024).toFixed(1)} MiB`;
}

byId<HTMLFormElement>('login-form').addEventListener('submit', event => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, byId<HTMLInputElement>('token').value.trim());
    void connect();
});
window.addEventListener('hashchange', () => void connect());
void connect();
