import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { RelayPayload } from '../../shared';
import { PeerDatabase } from '../../peer/storage/peer-database';
import { ChatRecord, HeldPayload } from '../../peer/storage/entities';
import { startSwitchboard } from '../../testing/test-kit';
import { collect, eventually } from '../helpers';
import { runProgram } from '../processes';

const usingRelay = (id: string) => ({ id, relay: { trustedRelays: ['relay'] } });

/** Writes records into a peer's storage file the way an older version left them when it was killed. */
async function leftByACrash(storage: string, ...records: object[]): Promise<void> {
    const database = new PeerDatabase(storage);
    await database.migrate();
    await database.persist(...records);
    database.disconnect();
}

describe('nothing accepted is stranded by a crash', () => {
    let directory: string;
    beforeEach(() => directory = mkdtempSync(join(tmpdir(), 'switchboard-durability-')));
    afterEach(() => rmSync(directory, { recursive: true, force: true }));

    it('a relay that restarts pushes a payload it held without a delivery entry, and the sender gets its receipt', async () => {
        const storage = join(directory, 'relay.sqlite');
        const now = new Date;
        await leftByACrash(storage, new HeldPayload('alice:p-1', 'p-1', 'alice', 'bob', 'note', 'acknowledged, then killed', now, new Date(now.getTime() + 3600_000)));

        await using kit = await startSwitchboard({ peers: [usingRelay('alice'), usingRelay('bob')] });
        const pushed = firstValueFrom(kit.peer('bob').relay.received$);
        const receipt = firstValueFrom(kit.peer('alice').relay.receipts$);
        const relay = await kit.addPeer({ id: 'relay', storage });

        expect(await pushed).toMatchObject({ originalSender: 'alice', via: 'relay', payload: { id: 'p-1', body: 'acknowledged, then killed' } });
        expect(await receipt).toMatchObject({ payloadId: 'p-1', recipient: 'bob', via: 'relay' });
        await eventually(async () => await relay.relay.heldFor('bob') === 0);
    });

    it('a sender that restarts sends a message left `sending` without an outbox entry', async () => {
        const storage = join(directory, 'alice.sqlite');
        await leftByACrash(storage, new ChatRecord('out:bob:m-1', 'm-1', 'bob', 'out', 'written, then killed', new Date));

        await using kit = await startSwitchboard({ peers: ['bob'] });
        const arrived = firstValueFrom(kit.peer('bob').chat.updates$.pipe(filter(entry => entry.direction === 'in')));
        let delivered!: Promise<unknown>;
        const alice = await kit.addPeer({ id: 'alice', storage }, peer => {
            delivered = collect(peer.chat.updates$, 1, entry => entry.direction === 'out' && entry.status === 'delivered');
        });

        expect(await arrived).toMatchObject({ id: 'm-1', peerId: 'alice', text: 'written, then killed' });
        await delivered;
        expect((await alice.chat.history('bob'))[0]?.status).toBe('delivered');
        expect(await alice.outbox.pending()).toEqual([]);
    });
});

describe('a relay killed with SIGKILL', () => {
    jest.setTimeout(90000);
    let directory: string;
    beforeEach(() => directory = mkdtempSync(join(tmpdir(), 'switchboard-kill-')));
    afterEach(() => rmSync(directory, { recursive: true, force: true }));

    it('pushes every payload it acknowledged, once, after a restart on the same file', async () => {
        const storage = join(directory, 'relay.sqlite');
        await using kit = await startSwitchboard({ peers: ['alice'] });
        const relayProcess = runProgram('tests/peer/relay-process.ts', [kit.url, storage]);
        try {
            await relayProcess.waitFor(/relay registered/, 60000);
            const relay = kit.peer('alice').to('relay').relay;
            const ids = Array.from({ length: 300 }, (_, i) => `p-${i}`);
            // All in flight at once; killed the moment the last acknowledgement is here.
            await Promise.all(ids.map(id => relay.store('bob', new RelayPayload(id, 'note', `payload ${id}`))));
            relayProcess.child.kill('SIGKILL');
            await relayProcess.exit;

            const bob = await kit.addPeer(usingRelay('bob'));
            const deliveries = jest.spyOn(bob.relay, 'accept');
            const pushed = collect(bob.relay.received$, 300);
            const restarted = await kit.addPeer({ id: 'relay', storage, relay: { quotaPerSender: 1000 } });
            expect((await pushed).map(envelope => envelope.payload.id).sort()).toEqual([...ids].sort());
            await eventually(async () => await restarted.relay.heldFor('bob') === 0, 30000);
            expect(deliveries).toHaveBeenCalledTimes(300);
        } finally {
            if (relayProcess.child.exitCode === null) relayProcess.child.kill('SIGKILL');
        }
    });
});
