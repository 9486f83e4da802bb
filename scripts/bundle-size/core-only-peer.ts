// The floor: the lean entry with no feature at all (session, calls, presence, outbox, sealing).
import { PeerCore } from '../../peer/core';

export async function start(url: string): Promise<void> {
    const peer = await PeerCore.connect({ url, id: 'tab' });
    await peer.whenRegistered();
}
