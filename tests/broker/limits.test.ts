import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { rpc } from '@deepkit/rpc';
import { MaxLength } from '@deepkit/type';
import { firstValueFrom, Observable, Subscription } from 'rxjs';
import { filter, scan } from 'rxjs/operators';
import { api, collect, Resources } from '../helpers';
import { runProgram } from '../processes';
import { AuthenticationFailed, QuotaExceeded, ValidationError } from '../../shared';
import { DashboardEvent } from '../../shared/dashboard';
import { TokenStore } from '../../server';
import { AuditLog } from '../../server/registry/audit-log';
import { PeerRegistry } from '../../server/registry/peer-registry';
import { RegistryDatabase } from '../../server/registry/database';
import { AuditEvent, PeerRecord } from '../../server/registry/entities';
import { BrokerStats, MAX_TRACKED_TRANSFERS } from '../../server/stats';
import { STREAMS_PER_CONNECTION } from '../../server/controllers/broker-controller';

@rpc.controller('test/names')
class Names {
    @rpc.action()
    greet(name: string & MaxLength<10>): string {
        return `hello ${name}`;
    }
}

describe('broker limits', () => {
    const resources = new Resources();
    afterEach(() => resources.closeAll());

    function temporaryDirectory(): string {
        const directory = mkdtempSync(join(tmpdir(), 'switchboard-limits-'));
        return resources.add(directory, d => rmSync(d, { recursive: true, force: true }));
    }

    /**
     * Subscribes once, until the test ends, and resolves at the first event that matches. Keeps the stream: Deepkit's
     * client ends the streams of one that is garbage collected.
     */
    async function follow<T>(stream: Observable<T>, until: (event: T) => boolean): Promise<Subscription> {
        resources.add(stream, () => undefined);
        let arrived!: () => void;
        const arrival = new Promise<void>(resolve => arrived = resolve);
        const subscription = resources.add(stream.subscribe({ next: event => until(event) && arrived() }), s => s.unsubscribe());
        await arrival;
        return subscription;
    }

    it('a connection may follow a few presence and dashboard streams; past them QuotaExceeded, until one ends', async () => {
        const broker = await resources.broker();
        const client = resources.peerClient(broker.url);
        const live: Subscription[] = [];
        for (let i = 0; i < STREAMS_PER_CONNECTION - 1; i++) {
            live.push(await follow(await api(client).presence(true), event => event.kind === 'synced'));
        }
        const dashboard = await api(client).dashboard();
        live.push(await follow(dashboard, event => event.kind === 'snapshot'));

        const refused = await api(client).presence(true).catch(error => error);
        expect(refused).toBeInstanceOf(QuotaExceeded);
        expect(refused.limit).toBe(STREAMS_PER_CONNECTION);
        // A stream obtained earlier and subscribed once more counts as one more stream as well.
        await expect(firstValueFrom(dashboard)).rejects.toBeInstanceOf(QuotaExceeded);

        live[0].unsubscribe();
        // The broker hears of the unsubscription in order with the next call on this connection.
        await follow(await api(client).presence(true), event => event.kind === 'synced');
    });

    it('an idle dashboard stream costs no timer of its own: four streams run on the timers of one', async () => {
        const broker = await resources.broker();
        const client = resources.peerClient(broker.url);
        const timers = () => process.getActiveResourcesInfo().filter(resource => resource === 'Timeout').length;
        const watch = async () => follow(await api(client).dashboard(), (event: DashboardEvent) => event.kind === 'snapshot');

        await watch();
        const withOne = timers();
        for (let i = 1; i < STREAMS_PER_CONNECTION; i++) await watch();
        // Before: each stream ran two batch timers and an activity timer of its own (3 more per stream).
        expect(timers() - withOne).toBeLessThan(STREAMS_PER_CONNECTION - 1);
    });

    it('the transfers table keeps at most MAX_TRACKED_TRANSFERS, dropping the oldest', () => {
        const stats = new BrokerStats();
        for (let id = 0; id < MAX_TRACKED_TRANSFERS + 500; id++) stats.transferStarted('caller', id, 'alice', 'bob');
        expect(stats.transfers.size).toBe(MAX_TRACKED_TRANSFERS);
        expect(stats.transfers.has(`caller:${MAX_TRACKED_TRANSFERS + 499}`)).toBe(true);
        expect(stats.transfers.has('caller:0')).toBe(false);
    });

    it('the registry drops peers not seen within registryRetentionDays when the broker starts', async () => {
        const database = join(temporaryDirectory(), 'broker.sqlite');
        const seed = new RegistryDatabase(database);
        await seed.migrate();
        const old = new PeerRecord('gone-for-months');
        old.lastSeen = new Date(Date.now() - 60 * 24 * 60 * 60 * 1000);
        const recent = new PeerRecord('seen-yesterday');
        recent.lastSeen = new Date(Date.now() - 24 * 60 * 60 * 1000);
        await seed.persist(old, recent);
        seed.disconnect();

        const broker = await resources.broker({ database, registryRetentionDays: 30 });
        const client = resources.peerClient(broker.url);
        expect((await api(client).listPeers()).map(peer => peer.id)).toEqual(['seen-yesterday']);
        const rows = await broker.app.get(RegistryDatabase).query(PeerRecord).find();
        expect(rows.map(row => row.id)).toEqual(['seen-yesterday']);
    });

    it('the registry keeps at most registryMaxOfflinePeers offline peers: the longest offline are dropped, from memory and disk', async () => {
        const broker = await resources.broker({ registryMaxOfflinePeers: 2 });
        const watcher = resources.peerClient(broker.url);
        const presence = await api(watcher).presence();
        for (const id of ['p1', 'p2', 'p3', 'p4']) {
            const offline = collect(presence, 1, event => event.peerId === id && event.kind === 'offline');
            const { client } = await resources.servingPeer(broker.url, id);
            // A clean release: a lost connection would leave the ID held for its owner (peerIdGraceMs).
            await api(client).deregister();
            await client.disconnect();
            await offline;
        }
        const online = await resources.servingPeer(broker.url, 'online-stays');

        expect((await api(online.client).listPeers()).map(peer => [peer.id, peer.online])).toEqual([['online-stays', true], ['p3', false], ['p4', false]]);
        expect(broker.app.get(PeerRegistry).countKnown()).toBe(3);
        const rows = broker.app.get(RegistryDatabase).query(PeerRecord);
        // The rows of dropped peers are deleted right after their pending writes.
        await expect(waitFor(async () => (await rows.find()).map(row => row.id).sort().join(','), 'online-stays,p3,p4')).resolves.toBe(true);
        // A dropped peer that comes back is simply new again.
        await resources.servingPeer(broker.url, 'p1');
        expect((await api(online.client).getPeer('p1')).online).toBe(true);
    });

    it('a token revoked from the CLI (another connection to the database) ends the live connections that use it', async () => {
        const database = join(temporaryDirectory(), 'broker.sqlite');
        const broker = await resources.broker({ auth: 'token', database, tokenRevocationCheckMs: 50 });
        const token = await broker.app.get(TokenStore).create('alice-app', { peerIds: ['alice'] });
        const other = await broker.app.get(TokenStore).create('bob-app', { peerIds: ['bob'] });
        const alice = await resources.servingPeer(broker.url, 'alice', { token });
        const bob = await resources.servingPeer(broker.url, 'bob', { token: other });
        const aliceClosed = firstValueFrom(alice.client.transporter.disconnected);

        // What `token:revoke` does: its own connection to the same SQLite file.
        const cli = new RegistryDatabase(database);
        resources.add(cli, d => d.disconnect());
        expect(await new TokenStore(cli).revoke('alice-app')).toBe(true);

        await aliceClosed;
        const closed = await broker.app.get(AuditLog).query({ kind: 'closed' });
        expect(closed.map(row => [row.peerId, row.session, row.reason])).toEqual([['alice', 'alice-app', 'token revoked']]);
        await expect(resources.peerClient(broker.url, token).connect()).rejects.toBeInstanceOf(AuthenticationFailed);
        // Connections with other tokens go on.
        expect((await api(bob.client).whoami()).peerId).toBe('bob');
    });

    it('refused controller access is audited, one row a second per reason and connection, with the count', async () => {
        const broker = await resources.broker({ auth: 'token' });
        const tokens = broker.app.get(TokenStore);
        const app = await tokens.create('app', { peerIds: ['alice'] });
        const audit = broker.app.get(AuditLog);
        const refusedCount = (reason: string) => audit.recorded.pipe(
            filter(event => event.kind === 'denied' && event.reason?.startsWith(reason) === true),
            scan((seen, event) => [...seen, event], [] as AuditEvent[]),
        );

        const flood = 40;
        const rows = refusedCount('not-authenticated');
        const allCounted = firstValueFrom(rows.pipe(filter(seen => seen.reduce((sum, row) => sum + countOf(row), 0) >= flood)));
        const anonymous = resources.stockClient(broker.url);
        const controller = api(anonymous);
        await Promise.all(Array.from({ length: flood }, () => controller.listPeers().catch(error => error.reason)));
        const written = await allCounted;
        expect(written.length).toBeLessThan(flood / 4);
        expect(written[0]).toMatchObject({ reason: 'not-authenticated', session: 'anonymous', action: 'listPeers' });
        expect(written.reduce((sum, row) => sum + countOf(row), 0)).toBe(flood);

        const adminOnly = firstValueFrom(refusedCount('admin-only'));
        expect(await api(resources.peerClient(broker.url, app)).dashboard().catch(error => error.reason)).toBe('admin-only');
        expect((await adminOnly)[0]).toMatchObject({ reason: 'admin-only', session: 'app', action: 'dashboard', connectionId: expect.stringMatching(/^[0-9a-f]{32}$/) });
    });

    it('a ValidationError does not echo a huge invalid value back: broker and peers shorten it', async () => {
        const broker = await resources.broker();
        const client = resources.peerClient(broker.url);
        const huge = 'x'.repeat(1024 * 1024);

        const fromBroker = await api(client).register(huge).catch(error => error);
        expect(fromBroker).toBeInstanceOf(ValidationError);
        expect(fromBroker.errors[0].value).toBe('x'.repeat(64) + '…');
        expect(JSON.stringify({ message: fromBroker.message, errors: fromBroker.errors }).length).toBeLessThan(2000);

        const bob = await resources.servingPeer(broker.url, 'bob');
        bob.client.peerKernel!.registerController(Names, 'test/names');
        const alice = await resources.servingPeer(broker.url, 'alice');
        const fromPeer = await alice.client.peer('bob').controller<Names>('test/names').greet(huge).catch(error => error);
        expect(fromPeer).toBeInstanceOf(ValidationError);
        expect(fromPeer.errors[0].value).toBe('x'.repeat(64) + '…');
        expect(JSON.stringify({ message: fromPeer.message, errors: fromPeer.errors }).length).toBeLessThan(2000);
    });

    it('the audit and peers commands print control characters in stored IDs and reasons escaped, one row a line', async () => {
        const database = join(temporaryDirectory(), 'broker.sqlite');
        const seed = new RegistryDatabase(database);
        await seed.migrate();
        const forged = new AuditEvent('denied');
        forged.peerId = 'mallory\n2030-01-01T00:00:00.000Z  register    admin';
        forged.target = 'bob\r\u001b[2K';
        forged.reason = '<red>fake</red>\u202e';
        forged.session = 'anon\u2028ymous';
        const peer = new PeerRecord('eve\nonline   root');
        peer.capabilities = ['chat\u0007'];
        await seed.persist(forged, peer);
        seed.disconnect();

        const env = { SWITCHBOARD_DATABASE: database };
        // Two readers of one file: they run side by side.
        const audit = runProgram('server/main.ts', ['audit'], env);
        const peers = runProgram('server/main.ts', ['peers'], env);
        expect(await audit.exit).toBe(0);
        const rows = audit.output().split('\n').filter(line => line.includes('mallory'));
        expect(rows).toHaveLength(1);
        expect(audit.output()).not.toMatch(/^2030-01-01/m);
        expect(rows[0]).toContain('mallory\\n2030-01-01T00:00:00.000Z');
        expect(rows[0]).toContain('bob\\r\\u001b[2K');
        expect(rows[0]).toContain('\\u003cred>fake\\u003c/red>\\u202e');
        expect(rows[0]).toContain('anon\\u2028ymous');

        expect(await peers.exit).toBe(0);
        expect(peers.output()).not.toMatch(/^online\s+root/m);
        expect(peers.output()).toContain('eve\\nonline   root');
        expect(peers.output()).toContain('chat\\u0007');
    }, 60_000);
});

/** A refusal row stands for one refusal, or for `N more` of them. */
function countOf(row: AuditEvent): number {
    const match = /\(\+(\d+) more/.exec(row.reason ?? '');
    return match ? Number(match[1]) : 1;
}

/**
 * Polls `read` (rows on disk: no event tells of them) every few milliseconds until it returns `expected`; fails after
 * `timeoutMs`. Not on every turn of the event loop: that would starve the writes it waits for.
 */
async function waitFor<T>(read: () => Promise<T>, expected: T, timeoutMs = 15_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (await read() !== expected) {
        if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(await read())}, not ${JSON.stringify(expected)}`);
        await new Promise(resolve => setTimeout(resolve, 10));
    }
    return true;
}
