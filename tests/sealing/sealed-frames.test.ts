import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { firstValueFrom, merge } from 'rxjs';
import { filter } from 'rxjs/operators';
import { Peer, PeerOptions } from '@switchboard/peer';
import { peerInternals } from '@switchboard/peer/internal';
import { HeldPayload } from '../../peer/storage/entities';
import { RelayPayload } from '../../shared';
import { startSwitchboard, SwitchboardTestKit } from '../../testing/test-kit';
import { eventually } from '../helpers';
import { FrameTap } from './frame-tap';

const SECRETS = {
    chat: 'chat-secret-7f3a kept from the broker',
    relay: 'relay-secret-91bc kept from the relay',
    file: 'file-secret-5d2e kept from the broker',
    collab: 'collab-secret-c0de kept from the broker',
};

/** Peers connected through a tap that keeps every byte the broker sends them. */
async function tappedPeers(kit: SwitchboardTestKit, tap: FrameTap, options: Omit<PeerOptions, 'url'>[]): Promise<Peer[]> {
    const peers: Peer[] = [];
    for (const each of options) peers.push(await Peer.connect({ ...each, url: tap.url }));
    return peers;
}

/** Chat, a relay payload, a file and a collaboration update, alice to bob (bob trusts `relay`); each arrives whole. */
async function sendEverything(alice: Peer, bob: Peer, directory: string): Promise<void> {
    const chatArrived = firstValueFrom(bob.chat.updates$.pipe(filter(entry => entry.direction === 'in')));
    await alice.chat.send('bob', SECRETS.chat);
    expect((await chatArrived).text).toBe(SECRETS.chat);

    const relayed = firstValueFrom(bob.relay.received$);
    await alice.relay.sendVia('relay', 'bob', new RelayPayload('p-1', 'note', SECRETS.relay));
    expect((await relayed).payload).toMatchObject({ id: 'p-1', kind: 'note', body: SECRETS.relay });

    const source = join(directory, 'secret.txt');
    const content = Buffer.from(SECRETS.file.repeat(20_000));
    writeFileSync(source, content);
    const shared = await alice.files.share(source);
    await bob.files.fetch('alice', shared.id, join(directory, 'copy.txt'));
    expect(readFileSync(join(directory, 'copy.txt')).equals(content)).toBe(true);

    const ours = await alice.collab.open('notes', { collaborators: ['bob'] });
    const theirs = await bob.collab.open('notes', { collaborators: ['alice'] });
    ours.text.insert(0, SECRETS.collab);
    if (theirs.toString() !== SECRETS.collab) await firstValueFrom(merge(theirs.changes$).pipe(filter(() => theirs.toString() === SECRETS.collab)));
}

describe('sealed payloads: what the broker and a relay forward', () => {
    let directory: string;
    beforeEach(() => directory = mkdtempSync(join(tmpdir(), 'switchboard-sealed-')));
    afterEach(() => rmSync(directory, { recursive: true, force: true }));

    it('no plaintext of a chat message, a relay payload, a file or a collaboration update crosses the broker', async () => {
        await using kit = await startSwitchboard();
        const tap = await FrameTap.start(Number(new URL(kit.url).port));
        // bob keeps his key in a file: a relay may hold payloads sealed for him (a key in memory is new at each start).
        const [alice, relay, bob] = await tappedPeers(kit, tap, [{ id: 'alice' }, { id: 'relay' }, { id: 'bob', relay: { trustedRelays: ['relay'] }, storage: join(directory, 'bob.sqlite') }]);
        try {
            await sendEverything(alice, bob, directory);
            // Every byte the broker sent bob, alice and the relay (which held the payload on its way): ciphertext only.
            for (const secret of Object.values(SECRETS)) expect({ secret, seen: tap.contains(secret) }).toEqual({ secret, seen: false });
            expect(await alice.sealing.contactFingerprint('bob')).toBe(await bob.sealing.fingerprint());
            expect(await bob.sealing.contactFingerprint('alice')).toBe(await alice.sealing.fingerprint());
        } finally {
            for (const peer of [alice, relay, bob]) await peer.close();
            await tap.close();
        }
    });

    it('with sealing off the same traffic is readable on the wire: the tap sees what it would leak', async () => {
        await using kit = await startSwitchboard();
        const tap = await FrameTap.start(Number(new URL(kit.url).port));
        const [alice, relay, bob] = await tappedPeers(kit, tap, [
            { id: 'alice', sealing: false }, { id: 'relay', sealing: false }, { id: 'bob', sealing: false, relay: { trustedRelays: ['relay'] } },
        ]);
        try {
            await sendEverything(alice, bob, directory);
            for (const secret of Object.values(SECRETS)) expect({ secret, seen: tap.contains(secret) }).toEqual({ secret, seen: true });
            expect(await alice.sealing.fingerprint()).toBeUndefined();
        } finally {
            for (const peer of [alice, relay, bob]) await peer.close();
            await tap.close();
        }
    });

    it('a relay holding a payload for an offline recipient stores ciphertext; the recipient reads it when back', async () => {
        const bobOptions = { id: 'bob', relay: { trustedRelays: ['relay'] }, storage: join(directory, 'bob.sqlite') };
        await using kit = await startSwitchboard({ peers: ['alice', 'relay', bobOptions] });
        // bob's key is published with his registration and stays in the broker's record while he is offline.
        await kit.peer('bob').close();
        await eventually(async () => !(await kit.peer('alice').broker.getPeer('bob')).online);
        await kit.peer('alice').relay.sendVia('relay', 'bob', new RelayPayload('p-2', 'note', SECRETS.relay), { ttlSeconds: 3600 });

        const held = await peerInternals(kit.peer('relay')).database.query(HeldPayload).find();
        expect(held).toHaveLength(1);
        expect(held[0]).toMatchObject({ payloadId: 'p-2', kind: 'switchboard/sealed', recipient: 'bob' });
        expect(held[0].body).not.toContain('relay-secret');

        const bob = await kit.addPeer(bobOptions);
        await eventually(async () => (await bob.relay.inbox()).length === 1);
        expect((await bob.relay.inbox())[0]).toMatchObject({ originalSender: 'alice', payload: { id: 'p-2', kind: 'note', body: SECRETS.relay } });
    });
});
