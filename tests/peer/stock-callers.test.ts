import { RpcClient, RpcWebSocketClientAdapter } from '@deepkit/rpc';
import WebSocket from 'ws';
import { AccessDenied, ChatApi, NotFound } from '../../shared';
import { startSwitchboard } from '../../testing/test-kit';

/**
 * A stock Deepkit client that has not loaded Switchboard's error classes dies inside its message handler when it
 * receives one. SDK peers answer such callers with plain errors whose message starts with the stable code; callers
 * that use the SDK keep getting typed errors.
 */
describe('stock Deepkit clients calling SDK peers', () => {
    it('get plain errors with the code first; SDK callers get the typed ones', async () => {
        await using kit = await startSwitchboard({ peers: ['bob', 'alice'] });
        const stock = new RpcClient(new RpcWebSocketClientAdapter(kit.url, WebSocket as any));
        try {
            const chat = stock.peer('bob').controller<ChatApi>(ChatApi.path);
            const localOnly = await chat.clearHistory().catch(e => e);
            expect(localOnly.constructor.name).toBe('RpcError');
            expect(localOnly.message).toMatch(/^ACCESS_DENIED: switchboard\/chat\.clearHistory is local-only/);
            const unknown = await stock.peer('bob').controller<{ nothing(): void }>(ChatApi.path).nothing().catch(e => e);
            expect(unknown.constructor.name).toBe('RpcError');
            expect(unknown.message).toMatch(/^NOT_FOUND: /);
        } finally {
            await stock.disconnect();
        }

        const alice = kit.peer('alice');
        await expect(alice.to('bob').chat.clearHistory()).rejects.toBeInstanceOf(AccessDenied);
        await expect(alice.to('bob').controller<{ nothing(): void }>(ChatApi.path).nothing()).rejects.toBeInstanceOf(NotFound);
    });
});
