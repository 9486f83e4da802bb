// The five built-ins on the lean entry: what `Peer` carries, without the opt-in features `@switchboard/peer` exports.
import { PeerCore } from '../../peer/core';
import { chat } from '../../peer/features/chat';
import { collab } from '../../peer/features/collab';
import { discovery } from '../../peer/features/discovery';
import { files } from '../../peer/features/files';
import { relay } from '../../peer/features/relay';

export async function start(url: string): Promise<void> {
    const peer = await PeerCore.connect({ url, id: 'tab', features: { chat: chat(), discovery: discovery(), relay: relay(), files: files(), collab: collab() } });
    await peer.features.chat.send('bob', 'hi');
}
