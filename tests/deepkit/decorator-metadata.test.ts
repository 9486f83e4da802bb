import { cli } from '@deepkit/app';
import { rpc, rpcClass } from '@deepkit/rpc';

/**
 * Contract of the decorator metadata we read through Deepkit's `_fetch` (not a documented API): a controller's
 * `@rpc.controller()` path (PeerKernel.registerController, peer/kernel.ts, for controllers added late) and a
 * command's `@cli.controller()` name (server/commands/command-line-checks.ts, for "unknown command" and flag checks).
 */
describe('Deepkit decorator metadata read through _fetch', () => {
    it("a controller's path", () => {
        @rpc.controller('contract/path')
        class Controller {
        }
        class Undecorated {
        }
        expect(rpcClass._fetch(Controller)?.getPath()).toBe('contract/path');
        expect(rpcClass._fetch(Undecorated)?.getPath()).toBeFalsy();
    });

    it("a command's name", () => {
        @cli.controller('contract:run')
        class Command {
            async execute(): Promise<void> {
            }
        }
        class Undecorated {
        }
        expect(cli._fetch(Command)?.name).toBe('contract:run');
        expect(cli._fetch(Undecorated)?.name).toBeFalsy();
    });
});
