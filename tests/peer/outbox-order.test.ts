import { SQLiteStatement } from '@deepkit/sqlite';
import { filter } from 'rxjs/operators';
import { DeliveryReceipt } from '../../shared';
import { Peer } from '../../peer';
import { startSwitchboard } from '../../testing/test-kit';
import { collect, wentOffline } from '../helpers';

/** Rows SQLite hands back for queries of the outbox table while `work` runs. */
async function outboxRowsRead(work: () => Promise<unknown>): Promise<number> {
    let rows = 0;
    const all = jest.spyOn(SQLiteStatement.prototype, 'all').mockImplementation(async function (this: SQLiteStatement, params?: any[]) {
        const result = (this as any).stmt.all(...(params ?? []));
        if (/"outbox"/.test((this as any).sql)) rows += result.length;
        return result;
    });
    const get = jest.spyOn(SQLiteStatement.prototype, 'get').mockImplementation(async function (this: SQLiteStatement, params?: any[]) {
        const result = (this as any).stmt.get(...(params ?? []));
        if (/"outbox"/.test((this as any).sql) && result) rows++;
        return result;
    });
    try {
        await work();
    } finally {
        all.mockRestore();
        get.mockRestore();
    }
    return rows;
}

async function sendMany(peer: Peer, to: string, count: number, prefix: string): Promise<void> {
    await Promise.all(Array.from({ length: count }, (_, i) => peer.chat.send(to, `${prefix}${i}`)));
}

describe('outbox: order and once', () => {
    it('20 bursts of 20 concurrent sends arrive in send order, each delivered once', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        const alice = kit.peer('alice');
        const bob = kit.peer('bob');
        // Deliveries as bob's chat controller gets them, before its deduplication.
        const deliveries = jest.spyOn(bob.chat, 'receive');
        const arrived: string[] = [];
        bob.chat.updates$.pipe(filter(entry => entry.direction === 'in')).subscribe(entry => arrived.push(entry.text));

        const sent: string[] = [];
        for (let burst = 0; burst < 20; burst++) {
            const texts = Array.from({ length: 20 }, (_, i) => `${burst}.${i}`);
            sent.push(...texts);
            const entries = await Promise.all(texts.map(text => alice.chat.send('bob', text)));
            expect(entries.map(entry => entry.status)).toEqual(texts.map(() => 'delivered'));
        }

        expect(arrived).toEqual(sent);
        expect(deliveries).toHaveBeenCalledTimes(400);
        expect(await alice.outbox.pending('bob')).toEqual([]);
    });

    it('relay receipts reach the app once, however often they are delivered', async () => {
        await using kit = await startSwitchboard({ peers: ['relay', { id: 'alice', relay: { trustedRelays: ['relay'] } }] });
        const receipts = collect(kit.peer('alice').relay.receipts$, 2);
        const receipt = new DeliveryReceipt('p-1', 'bob', new Date, 'relay');
        const toAlice = kit.peer('relay').to('alice').relay;
        await toAlice.receipt(receipt);
        await toAlice.receipt(receipt);
        await toAlice.receipt(new DeliveryReceipt('p-2', 'bob', new Date, 'relay'));
        expect((await receipts).map(r => r.payloadId)).toEqual(['p-1', 'p-2']);
    });

    it('queueing for an offline peer reads as many rows with 200 queued as with 10', async () => {
        await using kit = await startSwitchboard({ peers: ['alice', 'bob'] });
        const alice = kit.peer('alice');
        const gone = wentOffline(alice, 'bob');
        await kit.peer('bob').close();
        await gone;

        await sendMany(alice, 'bob', 10, 'early ');
        const withTen = await outboxRowsRead(() => alice.chat.send('bob', 'the 11th'));
        await sendMany(alice, 'bob', 189, 'more ');
        const withTwoHundred = await outboxRowsRead(() => alice.chat.send('bob', 'the 201st'));

        expect((await alice.outbox.pending('bob')).length).toBe(201);
        expect(withTwoHundred).toBe(withTen);
        // The head of the queue, tried and left there.
        expect(withTwoHundred).toBeLessThanOrEqual(2);
    });
});
