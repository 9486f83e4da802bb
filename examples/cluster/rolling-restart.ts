import { Peer } from '@switchboard/peer';
import { DiscoveryApi } from '@switchboard/protocol';

/** A broker of the example cluster, restarted by the caller: stop (SIGTERM: it drains), start, wait until it listens. */
export interface RestartableBroker {
    name: string;
    restart(): Promise<void>;
}

/**
 * `npm run cluster -- --rolling-restart`: peers calling each other in a loop (each knows every broker), while every
 * broker is restarted in turn with SIGTERM (a drain: its peers move first). Prints how many calls failed (target 0).
 */
export async function rollingRestart(brokers: RestartableBroker[], urls: string[], pairs = 4): Promise<{ calls: number, failed: number }> {
    const peers: Peer[] = [];
    for (let i = 0; i < 2 * pairs; i++) {
        // Each starts on a different broker, so every broker has peers to move.
        const url = [...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)];
        peers.push(await Peer.connect({ url, id: `rolling-${i}`, reconnect: { initialDelayMs: 20, maxDelayMs: 500 } }));
    }
    let running = true;
    let calls = 0;
    const failures: string[] = [];
    // caller i calls peer i + pairs (discovery's `info()`, served by every SDK peer): one loop per pair. Not declared
    // idempotent here, so no retry hides a failure.
    const loops = Array.from({ length: pairs }, async (_, i) => {
        const target = peers[i + pairs].id;
        while (running) {
            try {
                await peers[i].to(target).controller<DiscoveryApi>(DiscoveryApi.path).info();
                calls++;
            } catch (error) {
                failures.push(`${peers[i].id} → ${target}: ${(error as Error).name}: ${(error as Error).message}`);
            }
            await new Promise(resolve => setImmediate(resolve));
        }
    });
    for (const broker of brokers) {
        console.log(`Rolling restart: ${broker.name} (SIGTERM: its peers move, then it stops) …`);
        await broker.restart();
    }
    running = false;
    await Promise.all(loops);
    await Promise.all(peers.map(peer => peer.close()));
    for (const failure of failures.slice(0, 10)) console.log(`  failed: ${failure}`);
    return { calls: calls + failures.length, failed: failures.length };
}
