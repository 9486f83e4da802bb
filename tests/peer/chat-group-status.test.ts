import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { DeliveryStatus } from '../../shared';
import { startSwitchboard } from '../../testing/test-kit';

const rank: Record<DeliveryStatus, number> = { failed: 0, sending: 1, queued: 2, delivered: 3, read: 4 };

describe('group message status', () => {
    it('only moves forward while the members read messages as they arrive', async () => {
        // Storage in files, as an app keeps it: writes take long enough for the race to show.
        const directory = mkdtempSync(join(tmpdir(), 'group-status-'));
        await using cleanup = { [Symbol.asyncDispose]: async () => rmSync(directory, { recursive: true, force: true }) };
        await using kit = await startSwitchboard({ peers: ['alice', 'bob', 'carol'].map(id => ({ id, storage: join(directory, `${id}.sqlite`) })) });
        const alice = kit.peer('alice');
        // Bob and carol read every group message the moment it arrives, racing alice's own "delivered".
        for (const reader of [kit.peer('bob'), kit.peer('carol')]) {
            reader.chat.updates$.pipe(filter(entry => entry.direction === 'in')).subscribe(entry => {
                void reader.chat.markRead(entry.peerId, [entry.id]);
            });
        }
        const joined = Promise.all(['bob', 'carol'].map(id => firstValueFrom(kit.peer(id).chat.groups$)));
        const group = await alice.chat.createGroup('team', ['bob', 'carol']);
        await joined;

        const seen = new Map<string, DeliveryStatus[]>();
        alice.chat.updates$.subscribe(entry => {
            const statuses = seen.get(entry.peerId + ':' + entry.id) ?? [];
            statuses.push(entry.status);
            seen.set(entry.peerId + ':' + entry.id, statuses);
        });
        const messages = 20;
        const allRead = firstValueFrom(alice.chat.updates$.pipe(
            filter(() => [...seen.values()].filter(statuses => statuses.includes('read')).length === messages * 2),
        ));
        await Promise.all(Array.from({ length: messages }, (_, i) => alice.chat.sendToGroup(group.id, `message ${i}`)));
        await allRead;

        for (const member of ['bob', 'carol']) {
            expect((await alice.chat.history(member)).map(entry => entry.status)).toEqual(Array(messages).fill('read'));
        }
        for (const [message, statuses] of seen) {
            const backwards = statuses.some((status, i) => i > 0 && rank[status] < rank[statuses[i - 1]]);
            expect({ message, statuses, backwards }).toEqual({ message, statuses, backwards: false });
        }
    });
});
