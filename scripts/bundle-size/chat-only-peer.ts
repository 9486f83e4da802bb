// A browser app that uses chat alone: the lean entry and the chat feature, nothing else.
import { PeerCore } from '../../peer/core';
import { chat } from '../../peer/features/chat';

export async function start(url: string): Promise<void> {
    const peer = await PeerCore.connect({ url, id: 'tab', features: { chat: chat() } });
    await peer.features.chat.send('bob', 'hi');
}
