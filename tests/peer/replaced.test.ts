import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { AuditLog } from '../../server/registry/audit-log';
import { AuditEvent } from '../../server/registry/entities';
import { PeerReplaced } from '../../shared';
import { Peer } from '../../peer';
import { collect, Resources } from '../helpers';

const resources = new Resources();
afterEach(() => resources.closeAll());

describe('Peer: replaced by its owner', () => {
    it('two processes with one ID and one storage: the first stops, says why, and stays away', async () => {
        const directory = resources.add(mkdtempSync(join(tmpdir(), 'switchboard-replaced-')), path => rmSync(path, { recursive: true, force: true }));
        const storage = join(directory, 'alice.sqlite');
        const broker = await resources.broker();
        const takeovers: AuditEvent[] = [];
        broker.app.get(AuditLog).recorded.subscribe(event => {
            if (event.kind === 'takeover') takeovers.push(event);
        });
        // Reconnecting without delay: a replaced peer that came back would do so at once.
        const reconnect = { initialDelayMs: 0, maxDelayMs: 0, jitter: 0 };
        const chat = resources.add(await Peer.connect({ url: broker.url, id: 'alice', storage, reconnect }), p => p.close());
        const errors: Error[] = [];
        chat.errors$.subscribe(error => errors.push(error));
        // The first state after 'registered' tells: 'replaced', or (a peer that fights back) 'disconnected'.
        const verdict = collect(chat.state$, 1, state => state !== 'registered');

        const editor = resources.add(await Peer.connect({ url: broker.url, id: 'alice', storage, reconnect }), p => p.close());
        expect(await verdict).toEqual(['replaced']);
        expect(errors).toHaveLength(1);
        expect(errors[0]).toBeInstanceOf(PeerReplaced);
        expect((errors[0] as PeerReplaced).code).toBe('PEER_REPLACED');
        expect(errors[0].message).toContain('reclaim secret');
        await expect(chat.whenRegistered()).rejects.toBeInstanceOf(PeerReplaced);
        await expect(chat.to('bob').controller<{ hello(): string }>('app/hello').hello()).rejects.toBeInstanceOf(PeerReplaced);

        // Round trips through the broker, long after an immediate reconnect of the replaced peer would have landed.
        for (let i = 0; i < 5; i++) expect((await editor.broker.whoami()).peerId).toBe('alice');
        expect(editor.state).toBe('registered');
        expect(chat.state).toBe('replaced');
        // One takeover: the editor's (the replaced connection's row says so), no fight back.
        expect(takeovers.map(event => event.reason ?? '')).toEqual(['replaced-by-owner', '']);

        await chat.close();
        await chat.close();
        expect(chat.state).toBe('closed');
        await firstValueFrom(editor.state$.pipe(filter(state => state === 'registered')));
    });
});
