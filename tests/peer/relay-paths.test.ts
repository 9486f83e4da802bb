import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { RelayEnvelope, RelayPayload } from '../../shared';
import { startSwitchboard } from '../../testing/test-kit';
import { eventually, wentOffline } from '../helpers';

/**
 * A peer that uses "carol" as its relay, with its storage in a file: a relay holds a payload only sealed for a key the
 * recipient still has after a restart (a key in memory is new at each start, see peer.sealing).
 */
let directory: string;
beforeEach(() => directory = mkdtempSync(join(tmpdir(), 'switchboard-relay-paths-')));
afterEach(() => rmSync(directory, { recursive: true, force: true }));
const usingCarol = (id: string) => ({ id, relay: { trustedRelays: ['carol'] }, storage: join(directory, `${id}.sqlite`) });

describe('relay.send: a relay payload by the best path', () => {
    it('straight to an online recipient; held by a relay both trust while it is offline, and taken once when it is back', async () => {
        await using kit = await startSwitchboard({ peers: ['carol', usingCarol('alice'), usingCarol('bob')] });
        const alice = kit.peer('alice');
        const received = firstValueFrom(kit.peer('bob').relay.received$);
        expect(await alice.relay.send('bob', new RelayPayload('p-1', 'note', 'now'))).toBe('broker');
        expect(await received).toMatchObject({ originalSender: 'alice', via: 'alice', payload: { id: 'p-1', body: 'now' } });

        const bobGone = wentOffline(alice, 'bob');
        await kit.peer('bob').close();
        await bobGone;
        expect(await alice.relay.send('bob', new RelayPayload('p-2', 'note', 'later'))).toBe('relay');
        expect(await kit.peer('carol').relay.heldFor('bob')).toBe(1);
        expect(await alice.outbox.pending('bob')).toEqual([]);

        const receipt = firstValueFrom(alice.relay.receipts$.pipe(filter(each => each.payloadId === 'p-2')));
        const pushed: RelayEnvelope[] = [];
        const bob = await kit.addPeer(usingCarol('bob'), peer => peer.relay.received$.subscribe(envelope => pushed.push(envelope)));
        expect(await receipt).toMatchObject({ recipient: 'bob', via: 'carol' });
        expect(pushed.map(envelope => [envelope.payload.id, envelope.originalSender, envelope.via])).toEqual([['p-2', 'alice', 'carol']]);
        // Its storage survived the restart: each payload once.
        expect((await bob.relay.inbox()).map(envelope => envelope.payload.id)).toEqual(['p-1', 'p-2']);
    });

    it('with no relay both trust: the payload waits in the outbox and goes out, once, when the recipient is back', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        const alice = kit.peer('alice');
        const bobGone = wentOffline(alice, 'bob');
        await kit.peer('bob').close();
        await bobGone;
        expect(await alice.relay.send('bob', new RelayPayload('p-3', 'note', 'wait for me'))).toBe('outbox');
        const bob = await kit.addPeer('bob');
        await eventually(async () => (await bob.relay.inbox()).length === 1);
        expect((await bob.relay.inbox())[0]).toMatchObject({ originalSender: 'alice', payload: { id: 'p-3', body: 'wait for me' } });
        // Its entry goes once the recipient answered.
        await eventually(async () => (await alice.outbox.pending('bob')).length === 0);
    });
});
