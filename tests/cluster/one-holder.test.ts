import { PeerClient } from '../../peer/internal';
import { Disconnected, PeerIdTaken } from '../../shared';
import { api, EchoController, echoOf, eventually, Resources } from '../helpers';
import { describeOnEveryBus, exchangeOf, sees, usesClusterOn } from './cluster-fixture';

const resources = new Resources();
const ROUNDS = 100;

describeOnEveryBus('Cluster: one ID, one holder', bus => {
    const setup = usesClusterOn(bus, resources);

    it(`the owner's connection and four clients reclaiming its ID with the same secret, two through each broker: one holder, ${ROUNDS} rounds of ${ROUNDS}`, async () => {
        const [one, two] = [await setup.cluster.broker(), await setup.cluster.broker()];
        const caller = resources.peerClient(two.url);
        await api(caller).register('caller');
        const holders: number[] = [];
        for (let round = 0; round < ROUNDS; round++) {
            const peerId = `x${round}`;
            const { client: owner, registration } = await resources.servingPeer(one.url, peerId);
            await sees(two, peerId);
            const open = new Set<PeerClient>([owner]);
            const watch = (client: PeerClient) => client.transporter.disconnected.subscribe(() => open.delete(client));
            watch(owner);
            const reclaimers = [one, two, one, two].map(broker => resources.peerClient(broker.url));
            const outcomes = await Promise.allSettled(reclaimers.map(async client => {
                await client.connect();
                watch(client);
                open.add(client);
                await api(client).register(peerId, registration.reclaimSecret);
                client.servedPeerId = peerId;
                client.peerKernel!.registerController(EchoController, EchoController.path);
            }));
            // A reclaimer whose registration failed holds nothing: only registered connections count. It lost the race
            // (PeerIdTaken), or it won and was replaced before the answer reached it (Disconnected): never another error.
            outcomes.forEach((outcome, index) => outcome.status === 'rejected' && open.delete(reclaimers[index]));
            for (const outcome of outcomes) if (outcome.status === 'rejected') expect([PeerIdTaken, Disconnected].some(type => outcome.reason instanceof type)).toBe(true);
            await exchangeOf(one).settled();
            await exchangeOf(two).settled();
            // Losers are closed as replaced; two holders would stay open for ever, and this wait would fail.
            await eventually(() => open.size <= 1);
            holders.push(open.size);
            // Both brokers route the ID to the one connection left, and it answers.
            await eventually(() => exchangeOf(one).lookup(peerId)?.connectionId === exchangeOf(two).lookup(peerId)?.connectionId);
            expect(await echoOf(caller, peerId).echo(`round ${round}`)).toBe(`round ${round}`);
            for (const client of [owner, ...reclaimers]) await client.disconnect();
        }
        expect(holders).toEqual(Array(ROUNDS).fill(1));
    });
});
