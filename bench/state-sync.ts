import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { Peer } from '../peer';
import { replicatedState, ReplicatedMap } from '../peer/features/state';
import type { Measurement } from './scenarios';
import { ServerProcess } from './systems';

/**
 * Replicated state: `keys` entries reaching a member, two ways. Live: the member is online and each write goes out
 * as its own push. Away: the member was paused during the writes and catches up on its return with one sync (one
 * merged update). Time, bytes the member received, and messages between the two.
 */
export async function stateSync(keys: number): Promise<Measurement[]> {
    const scenario = `replicated state: ${keys} keys to a member`;
    const server = await ServerProcess.start('switchboard.ts');
    const url = `ws://127.0.0.1:${server.port}`;
    const features = () => ({ state: replicatedState({ maxBytes: 64 * keys + 1024 * 1024 }) });
    const alice = await Peer.connect({ url, id: 'alice', features: features() });
    const bob = await Peer.connect({ url, id: 'bob', features: features() });
    const traffic = () => {
        const a = alice.features.state.traffic, b = bob.features.state.traffic;
        return { messages: a.syncsSent + a.pushesSent + b.syncsSent + b.pushesSent, bytes: b.bytesReceived };
    };
    const value = (i: number) => `value-${i}`.padEnd(32, '.');
    try {
        // Live: one write per turn of the event loop, so each is its own push.
        const liveAtAlice = await alice.features.state.open<string>('live', { members: ['bob'] });
        const liveAtBob = await bob.features.state.open<string>('live', { members: ['alice'] });
        let before = traffic();
        let started = performance.now();
        for (let i = 0; i < keys; i++) {
            liveAtAlice.set(`key-${i}`, value(i));
            await new Promise(resolve => setImmediate(resolve));
        }
        await inSync(liveAtAlice, liveAtBob, keys);
        const liveMs = performance.now() - started;
        const live = { messages: traffic().messages - before.messages, bytes: traffic().bytes - before.bytes };

        // Away: the same writes while bob is paused; he catches up when he is back.
        const awayAtAlice = await alice.features.state.open<string>('away', { members: ['bob'] });
        const awayAtBob = await bob.features.state.open<string>('away', { members: ['alice'] });
        await alice.watchPresence(['bob']);
        const offline = firstValueFrom(alice.presence$.pipe(filter(event => event.peerId === 'bob' && event.kind === 'offline')));
        await bob.pause();
        await offline;
        for (let i = 0; i < keys; i++) awayAtAlice.set(`key-${i}`, value(i));
        before = traffic();
        started = performance.now();
        await bob.resume();
        const registeredMs = performance.now() - started;
        await inSync(awayAtAlice, awayAtBob, keys);
        const awayMs = performance.now() - started;
        const away = { messages: traffic().messages - before.messages, bytes: traffic().bytes - before.bytes };

        const row = (system: string, metric: string, unit: string, value: number, note?: string): Measurement =>
            ({ scenario, system, metric, unit, value, better: 'lower', note });
        return [
            row('live (one push per write)', 'time to sync', 'ms', liveMs),
            row('live (one push per write)', 'bytes received', 'B', live.bytes),
            row('live (one push per write)', 'messages', 'msgs', live.messages),
            row('away, then one sync', 'time to sync', 'ms', awayMs, `${Math.round(awayMs)} ms, of which ${Math.round(registeredMs)} ms reconnecting`),
            row('away, then one sync', 'bytes received', 'B', away.bytes),
            row('away, then one sync', 'messages', 'msgs', away.messages, `${away.messages} (both maps compared on return: the live one found equal; the other one sync and one push)`),
        ];
    } finally {
        await bob.close();
        await alice.close();
        await server.stop();
    }
}

/** Waits until `member` holds `keys` entries and the same hash as `source`. */
async function inSync(source: ReplicatedMap<any>, member: ReplicatedMap<any>, keys: number): Promise<void> {
    for (;;) {
        if (member.size === keys && await member.hash() === await source.hash()) return;
        await new Promise(resolve => setTimeout(resolve, 5));
    }
}
