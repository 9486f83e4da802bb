import { createHash, randomBytes } from 'crypto';
import { readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { usesExamplePrograms } from './example-programs';

/** The example programs, run as people run them, against a real broker. */
describe('example clients', () => {
    const programs = usesExamplePrograms('switchboard-examples-');
    const { resources, start } = programs;
    // The bound of a test, not of a step: each step waits for its event, however busy the machine.
    jest.setTimeout(240000);

    it('chat: alice and bob talk with delivery status; a message to an absent bob is queued and delivered when he is back', async () => {
        const broker = await resources.broker();
        const as = (id: string) => start('examples/chat/main.ts', ['--id', id, '--url', broker.url, '--storage', join(programs.directory, `${id}.sqlite`)]);
        const alice = as('alice');
        let bob = as('bob');
        await alice.waitFor(/Connected to .* as alice/);
        await bob.waitFor(/Connected to .* as bob/);

        alice.type('@bob hello bob');
        await bob.waitFor(/alice: hello bob/);
        await alice.waitFor(/\(bob\) "hello bob" delivered/);
        await alice.waitFor(/\(bob\) "hello bob" read/);

        alice.type('/peers');
        await alice.waitFor(/online\s+bob/);
        alice.type('/nonsense');
        await alice.waitFor(/Unknown command \/nonsense/);

        bob.type('/quit');
        expect(await bob.exit).toBe(0);
        await alice.waitFor(/\* bob is offline/);
        const mark = alice.output().length;
        alice.type('@bob are you there?');
        await alice.waitFor(/"are you there\?" queued/, undefined, mark);

        bob = as('bob');
        await bob.waitFor(/alice: are you there\?/);
        await alice.waitFor(/"are you there\?" delivered/, undefined, mark);

        alice.type('/group create team bob');
        await bob.waitFor(/alice added you to group "team"/);
        alice.type('/group send team hello team');
        await alice.waitFor(/Sent to "team": 1 delivered, 0 queued, 0 failed/);
        await bob.waitFor(/\[team\] alice: hello team/);
        bob.type('/groups');
        await bob.waitFor(/team: alice, bob \(owner alice\)/);

        // The group's topic is replicated state among its members.
        alice.type('/group topic team Release day');
        await bob.waitFor(/\* \[team\] topic: Release day \(set by alice\)/);
        bob.type('/groups');
        await bob.waitFor(/team: alice, bob \(owner alice\) topic: Release day/);
    });

    it('file share: a shared file is fetched with a progress report and its checksum verified', async () => {
        const broker = await resources.broker();
        const content = randomBytes(1024 * 1024 + 123);
        const source = join(programs.directory, 'big.bin');
        writeFileSync(source, content);
        const sharer = start('examples/file-share/share.ts', ['--id', 'alice', '--url', broker.url, '--storage', join(programs.directory, 'alice.sqlite'), source]);
        const [, fileId] = await sharer.waitFor(/as ([0-9a-f]{32})/);

        const destination = join(programs.directory, 'copy.bin');
        const fetcher = start('examples/file-share/fetch.ts', ['--id', 'bob', '--url', broker.url, '--storage', join(programs.directory, 'bob.sqlite'), 'alice', fileId, destination]);
        expect(await fetcher.exit).toBe(0);
        expect(fetcher.output()).toMatch(/SHA-256 verified/);
        expect(createHash('sha256').update(readFileSync(destination)).digest('hex')).toBe(createHash('sha256').update(content).digest('hex'));
    });

    it('collab: two editors converge on the same document', async () => {
        const broker = await resources.broker();
        const editor = (id: string, other: string) => start('examples/collab/main.ts', ['--id', id, '--with', other, '--doc', 'notes', '--url', broker.url, '--storage', join(programs.directory, `${id}.sqlite`)]);
        const alice = editor('alice', 'bob');
        await alice.waitFor(/--- notes \(you are alice\) ---/);
        alice.type('a first line from alice');
        await alice.waitFor(/1 \| first line from alice/);

        const bob = editor('bob', 'alice');
        await bob.waitFor(/1 \| first line from alice/);
        bob.type('i 1 bob was here first');
        await alice.waitFor(/changed by bob ---\n\s+1 \| bob was here first\n\s+2 \| first line from alice/);

        const mark = [alice.output().length, bob.output().length];
        alice.type('p');
        bob.type('p');
        const [a] = await alice.waitFor(/--- notes ---\n[\s\S]*?\n---/, undefined, mark[0]);
        const [b] = await bob.waitFor(/--- notes ---\n[\s\S]*?\n---/, undefined, mark[1]);
        expect(a).toBe(b);
    });

    it('web: `npm run web` serves the browser peer page for the broker it is given, and rejects a bad port', async () => {
        const broker = await resources.broker();
        const web = start('examples/web/serve.ts', ['--broker', broker.url, '--port', '0']);
        const [, url] = await web.waitFor(/Web peer example on (http:\/\/127\.0\.0\.1:\d+\/)/);
        expect(await (await fetch(url)).text()).toContain(`<meta name="switchboard-broker" content="${broker.url}">`);
        const script = await fetch(`${url}app.js`);
        expect(script.headers.get('content-type')).toContain('javascript');
        expect((await script.text()).length).toBeGreaterThan(10_000);
        web.child.kill('SIGTERM');
        expect(await web.exit).toBe(0);

        const bad = start('examples/web/serve.ts', ['--port', 'eighty']);
        expect(await bad.exit).toBe(2);
        expect(bad.output()).toContain('--port must be a port number, got "eighty".');
    });

    it('with no broker running, an example says what to do and exits with 1', async () => {
        const chat = start('examples/chat/main.ts', ['--id', 'alice', '--url', 'ws://127.0.0.1:9', '--storage', ':memory:']);
        expect(await chat.exit).toBe(1);
        expect(chat.output()).toContain('Cannot reach the broker at ws://127.0.0.1:9. Start it with `npm start`, or pass --url.');
        expect(chat.output()).not.toMatch(/\n\s+at /);
    });
});
