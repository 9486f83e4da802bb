import { App } from '@deepkit/app';
import { DirectClient, OfflineError, rpc, RpcClient, RpcKernel, RpcServerAction, RpcWebSocketClientAdapter } from '@deepkit/rpc';
import { Maximum, Positive } from '@deepkit/type';
import { createServer } from 'net';
import WebSocket from 'ws';
import {
    invalidModuleConfigIn, isArgumentValidationFailure, unknownActionIn, unknownControllerIn, withoutConnectPrefix,
} from '../../shared/deepkit/error-matchers';

/**
 * Contract of shared/deepkit/error-matchers.ts: stock Deepkit is made to throw each error Switchboard recognises by
 * its text, and the matcher must still recognise it. Fails when a Deepkit upgrade rewords one.
 */
@rpc.controller('contract/echo')
class Echo {
    @rpc.action()
    positive(value: number & Positive): number {
        return value;
    }
}

function stockClient(): DirectClient {
    const kernel = new RpcKernel();
    kernel.registerController(Echo, 'contract/echo');
    return new DirectClient(kernel);
}

describe('Deepkit error texts (shared/deepkit/error-matchers.ts)', () => {
    it('an argument that fails validation', async () => {
        const failures: unknown[] = [];
        const stockHandleAction = RpcServerAction.prototype.handleAction;
        // The text is what Deepkit hands its response builder (ValidatingServerAction intercepts it there).
        const spy = jest.spyOn(RpcServerAction.prototype, 'handleAction').mockImplementation(function (this: RpcServerAction, message, response) {
            const error = response.error;
            response.error = (failure: Error | string) => {
                failures.push(failure);
                return error.call(response, failure);
            };
            return stockHandleAction.call(this, message, response);
        });
        try {
            await expect(stockClient().controller<Echo>('contract/echo').positive(-1)).rejects.toThrow();
        } finally {
            spy.mockRestore();
        }
        expect(failures).toHaveLength(1);
        expect(isArgumentValidationFailure(failures[0])).toBe(true);
    });

    it('an unknown controller and an unknown action', async () => {
        const client = stockClient();
        const noController = await client.controller<Echo>('contract/nothing').positive(1).then(() => undefined, (error: Error) => error);
        expect(unknownControllerIn(noController?.message ?? '')).toBe('contract/nothing');
        const noAction = await client.controller<{ missing(): Promise<void> }>('contract/echo').missing().then(() => undefined, (error: Error) => error);
        expect(unknownActionIn(noAction?.message ?? '')).toBe('missing');
        expect(unknownControllerIn(noAction?.message ?? '')).toBeUndefined();
    });

    it('a client that could not connect', async () => {
        // A port nobody listens on: taken, then released.
        const server = createServer();
        await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
        const port = (server.address() as { port: number }).port;
        await new Promise(resolve => server.close(resolve));
        const client = new RpcClient(new RpcWebSocketClientAdapter(`ws://127.0.0.1:${port}`, WebSocket as unknown as typeof globalThis.WebSocket));
        const error = await client.connect().then(() => undefined, error => error as Error);
        expect(error).toBeInstanceOf(OfflineError);
        expect(error!.message).toMatch(/^Could not connect: /);
        expect(withoutConnectPrefix(error!.message)).not.toMatch(/Could not connect/);
        await client.disconnect();
    });

    it('an invalid module config', () => {
        class Config {
            port: number & Maximum<100> = 1;
        }
        const app = new App({ config: Config });
        app.configure({ port: 1000 });
        let message = '';
        try {
            app.get(Config);
        } catch (error) {
            message = (error as Error).message;
        }
        expect(message).toContain('Configuration for module');
        expect(invalidModuleConfigIn(message)).toEqual({ setting: 'port', problem: expect.stringContaining('100') });
    });
});
