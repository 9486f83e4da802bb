import { Resources } from './helpers';
import { Run, runProgram } from './processes';

/** The examples take several brokers (`--url a,b` or SWITCHBOARD_URL), as `npm run cluster` tells people to run them. */
describe('example clients with a list of brokers', () => {
    const resources = new Resources();
    jest.setTimeout(90000);
    afterEach(() => resources.closeAll());

    function start(script: string, args: string[], env: Record<string, string> = {}): Run {
        const run = runProgram(script, args, env);
        resources.add(run, r => {
            if (r.child.exitCode === null) r.child.kill('SIGKILL');
        });
        return run;
    }

    it('chat connects to the first broker that answers and moves on when its broker goes away', async () => {
        const first = await resources.broker();
        const second = await resources.broker();
        // Nobody listens on port 9: the first URL fails, the others are tried in turn.
        const alice = start('examples/chat/main.ts', ['--id', 'alice', '--storage', ':memory:'], { SWITCHBOARD_URL: `ws://127.0.0.1:9, ${first.url},${second.url}` });
        await alice.waitFor(new RegExp(`Connected to ${first.url} as alice`));

        const offset = alice.output().length;
        await first.close();
        await alice.waitFor(/connection to the broker lost/, undefined, offset);
        await alice.waitFor(new RegExp(`reconnected as alice via ${second.url}`), undefined, offset);
    });

    it('none answers: one line naming the brokers, exit 1', async () => {
        const chat = start('examples/chat/main.ts', ['--id', 'alice', '--url', 'ws://127.0.0.1:9,ws://127.0.0.1:7', '--storage', ':memory:']);
        expect(await chat.exit).toBe(1);
        expect(chat.output()).toContain('Cannot reach any of the brokers ws://127.0.0.1:9,ws://127.0.0.1:7. Start them with `npm run cluster`, or pass --url.');
    });
});
