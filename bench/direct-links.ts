import { RpcControllerState } from '@deepkit/rpc';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { Peer } from '../peer';
import { directLinks } from '../peer/features/links';
import { callMeasurements, Measurement, Sizes, throughputRun } from './scenarios';
import { EchoApi, EchoController, ServerProcess } from './systems';

export const BROKERED = 'Switchboard, through the broker';

/** The bench broker takes any rate; so does the link here. */
const unlimited = { framesPerSecond: 1_000_000_000, bytesPerSecond: 1_000_000_000_000, maxFrameBytes: 64 * 1024 * 1024 };

/**
 * 7. The same peer call over a direct link (WebRTC data channel, `@roamhq/wrtc`) and through the broker, by the same
 * two peers in one run: what a link saves. Without WebRTC the scenario says so and is skipped.
 */
export async function directLinkCall(sizes: Sizes): Promise<Measurement[]> {
    const scenario = 'direct link peer call';
    const server = await ServerProcess.start('switchboard.ts');
    const url = `ws://127.0.0.1:${server.port}`;
    const features = () => ({ links: directLinks({ auto: false, allow: () => true, limits: unlimited }) });
    const alice = await Peer.connect({ url, id: 'alice', features: features() });
    const bob = await Peer.connect({ url, id: 'bob', features: features(), expose: [[EchoController, 'bench/echo']] });
    try {
        if (alice.features.links.unavailable) {
            process.stdout.write(`! skipped: ${alice.features.links.unavailable.message}\n`);
            return [{ scenario, system: 'Switchboard', metric: 'skipped', unit: '', value: null, better: 'higher', note: 'skipped: no WebRTC' }];
        }
        const answered = firstValueFrom(bob.features.links.changes$.pipe(filter(event => event.kind === 'open')));
        await alice.features.links.open('bob');
        await answered;
        const direct = (payload: Uint8Array) => alice.to('bob').controller<EchoApi>('bench/echo').echo(payload);
        // Peer.invoke is the broker's path whatever link there is (what `to()` uses without one).
        const state = new RpcControllerState('bench/echo');
        state.peerId = 'bob';
        const brokered = (payload: Uint8Array) => alice.invoke('bob', state, 'echo', [payload], {});
        // Both paths warm (JIT, buffers) before either is measured.
        const warm = { ...sizes, throughputCalls: sizes.warmup * 10 };
        await throughputRun(brokered, warm);
        await throughputRun(direct, warm);
        const viaBroker = await callMeasurements(scenario, BROKERED, brokered, sizes);
        const viaLink = await callMeasurements(scenario, 'Switchboard', direct, sizes);
        return [...viaLink, ...viaBroker];
    } finally {
        await alice.close();
        await bob.close();
        await server.stop();
    }
}
