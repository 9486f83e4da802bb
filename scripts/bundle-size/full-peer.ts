// A browser app on the full SDK: `Peer` carries every built-in feature.
import { Peer } from '../../peer';

export async function start(url: string): Promise<void> {
    const peer = await Peer.connect({ url, id: 'tab' });
    await peer.chat.send('bob', 'hi');
}
