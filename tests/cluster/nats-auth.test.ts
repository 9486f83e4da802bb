import { Kvm } from '@nats-io/kv';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { BrokerConfig, ConfigError } from '../../server';
import { assertValidConfig } from '../../server/config';
import { parseNatsServers } from '../../server/cluster/nats-servers';
import { Resources } from '../helpers';
import { usesCluster } from './cluster-fixture';
import { describeWithNats } from './nats-server';

const resources = new Resources();

/** A raw NATS connection with the credentials of `natsUrl`, as a broker's link makes it. */
async function natsAs(natsUrl: string): Promise<NatsConnection> {
    const { servers, user, pass } = parseNatsServers(natsUrl);
    return resources.add(await connect({ servers, user, pass, inboxPrefix: `_INBOX_${user}` }), nc => nc.close());
}

/** Resolves with the error a subscription ends with (a permissions violation), or 'no error' once a flush passed. */
async function subscribeOutcome(nc: NatsConnection, subject: string): Promise<string> {
    const subscription = nc.subscribe(subject);
    const ended = (async () => {
        try {
            for await (const message of subscription) void message;
            return 'ended';
        } catch (error) {
            return (error as Error).message;
        }
    })();
    await nc.flush();
    return Promise.race([ended, nc.flush().then(() => nc.flush()).then(() => 'no error')]);
}

describeWithNats('Cluster: the NATS of a cluster is not open', () => {
    const setup = usesCluster(resources);

    it('a client without credentials is refused by the cluster\'s nats-server', async () => {
        await expect(connect({ servers: setup.nats.anonymousUrl, reconnect: false })).rejects.toThrow(/authorization/i);
    });

    it('a broker refuses a NATS URL without credentials unless told natsInsecure', async () => {
        const config = Object.assign(new BrokerConfig, { natsUrl: 'nats://127.0.0.1:4222' });
        expect(() => assertValidConfig(config)).toThrow(ConfigError);
        expect(() => assertValidConfig(config)).toThrow(/natsInsecure/);
        expect(() => assertValidConfig(Object.assign(config, { natsInsecure: true }))).not.toThrow();
        expect(() => assertValidConfig(Object.assign(new BrokerConfig, { natsUrl: 'nats://b1:secret@127.0.0.1:4222' }))).not.toThrow();
        await expect(resources.broker({ natsUrl: setup.nats.anonymousUrl, cluster: setup.cluster.name })).rejects.toThrow(/natsInsecure/);
    });

    it('a broker\'s NATS user reaches its cluster\'s subjects only: not another broker\'s inbox, not another cluster\'s buckets', async () => {
        const { cluster, nats } = setup;
        const one = await cluster.broker();
        const two = await cluster.broker();
        const asOne = await natsAs(cluster.natsUrlOf('b1'));
        expect(one.url).not.toBe(two.url);

        // Its own inbox and the control subject: allowed; the other broker's inbox: refused by nats-server.
        expect(await subscribeOutcome(asOne, `switchboard.${cluster.name}.b.b1`)).toBe('no error');
        expect(await subscribeOutcome(asOne, `switchboard.${cluster.name}.b.b2`)).toMatch(/permissions violation/i);
        expect(await subscribeOutcome(asOne, '_INBOX.>')).toMatch(/permissions violation/i);

        // Its cluster's directory: readable; another cluster's (made by the harness's own user): not.
        await resources.servingPeer(two.url, 'bob');
        expect((await (await new Kvm(asOne).open(`switchboard_${cluster.name}`)).get('p.bob'))?.operation).toBe('PUT');
        const other = await new Kvm(await natsAs(nats.url)).create('switchboard_other');
        await other.put('p.bob', 'secret');
        await expect((await new Kvm(jetstream(asOne, { timeout: 2_000 })).open('switchboard_other')).get('p.bob')).rejects.toThrow();
    });
});
