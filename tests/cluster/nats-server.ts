import { natsServerBinary } from '../../bench/nats-server';

// The launcher is bench/'s (the benchmarks start nats-server too, and bench/ imports nothing from tests/).
export * from '../../bench/nats-server';

/**
 * `describe`, or — without nats-server — `describe.skip` with a loud warning. Under CI=true a missing nats-server
 * fails instead: CI installs it (.ci/run), so its absence there is a broken setup, not a reason to skip.
 */
export function describeWithNats(name: string, body: () => void): void {
    if (natsServerBinary()) return describe(name, body);
    if (process.env.CI === 'true') {
        describe(name, () => it('needs nats-server', () => {
            throw new Error('nats-server is not installed (apt-get install nats-server), and CI=true requires it');
        }));
        return;
    }
    console.warn(`SKIPPED "${name}": nats-server is not installed (apt-get install nats-server, or set NATS_SERVER)`);
    describe.skip(name, body);
}
