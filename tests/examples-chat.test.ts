import { join } from 'path';
import { RunningBroker, startBroker } from '../server';
import { usesExamplePrograms } from './example-programs';

/** The chat example as a newcomer meets it: unknown IDs, a broker that goes away, a restart with messages queued. */
describe('example chat', () => {
    const programs = usesExamplePrograms('switchboard-chat-');
    const { resources, start } = programs;
    // The bound of a test, not of a step: each step waits for its event, however busy the machine.
    jest.setTimeout(240000);

    async function broker(port = 0): Promise<RunningBroker> {
        // A registry file: the broker restarted on the same port still knows who registered before.
        const running = await startBroker({ port, database: join(programs.directory, 'broker.sqlite'), logLevel: 'error' });
        let closed = false;
        const close = running.close;
        running.close = async () => {
            if (!closed) await close();
            closed = true;
        };
        return resources.add(running, b => b.close());
    }

    it('an unknown ID is refused; a message typed while the broker is down shows as queued; after a restart "Connected" comes first', async () => {
        const first = await broker();
        const as = (id: string) => start('examples/chat/main.ts', ['--id', id, '--url', first.url, '--storage', join(programs.directory, `${id}.sqlite`)]);
        const alice = as('alice');
        await alice.waitFor(/Connected to .* as alice/);

        alice.type('@nobody hi');
        await alice.waitFor(/No peer "nobody" is known to the broker/);

        const bob = as('bob');
        await bob.waitFor(/Connected to .* as bob/);
        bob.type('/quit');
        expect(await bob.exit).toBe(0);
        await alice.waitFor(/\* bob is offline/);

        await first.close();
        await alice.waitFor(/connection to the broker lost/);
        const mark = alice.output().length;
        alice.type('@bob typed while the broker is down');
        // Shown with its path: waiting in alice's outbox.
        await alice.waitFor(/\(bob\) "typed while the broker is down" queued \[outbox\]/, undefined, mark);
        alice.type('/quit');
        expect(await alice.exit).toBe(0);
        expect(alice.output()).not.toMatch(/"hi" (queued|sending|delivered)/);

        await broker(first.port);
        const bobAgain = as('bob');
        await bobAgain.waitFor(/Connected to .* as bob/);
        const aliceAgain = as('alice');
        await bobAgain.waitFor(/alice: typed while the broker is down/);
        await aliceAgain.waitFor(/"typed while the broker is down" delivered \[broker\]/);
        const output = aliceAgain.output();
        expect(output.indexOf('Connected to')).toBeGreaterThanOrEqual(0);
        expect(output.indexOf('Connected to')).toBeLessThan(output.indexOf('"typed while the broker is down" delivered'));
    });
});
