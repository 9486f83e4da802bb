import { rpc, RpcTypes, createRpcMessagePeer, serializeBinaryRpcMessage } from '@deepkit/rpc';
import { RTCPeerConnection } from '@roamhq/wrtc';
import { firstValueFrom, Subject } from 'rxjs';
import { filter } from 'rxjs/operators';
import { AccessDenied } from '../../shared';
import { LinkId, LinkNonce, LinksApi, LinkSdp } from '../../shared/links-api';
import { Peer } from '../../peer';
import { directLinks, DirectLinksOptions, LinkEvent } from '../../peer/features/links';
import { fingerprintOf, randomHex, signLink } from '../../peer/features/links/link-proof';
import { iceGathered } from '../../peer/features/links/webrtc';
import { EchoController, Resources } from '../helpers';

jest.setTimeout(60_000);

const resources = new Resources();
afterEach(() => resources.closeAll());

/** What an attacker's own code receives as signalling: it serves the links path, but runs no links feature. */
@rpc.controller(LinksApi)
class RogueSignalling {
    static readonly offers = new Subject<{ linkId: string, sdp: string, nonce: string }>();
    static readonly answers = new Subject<{ linkId: string, sdp: string, nonce: string }>();

    @rpc.action()
    offer(linkId: LinkId, sdp: LinkSdp, nonce: LinkNonce): void {
        RogueSignalling.offers.next({ linkId, sdp, nonce });
    }

    @rpc.action()
    answer(linkId: LinkId, sdp: LinkSdp, nonce: LinkNonce): void {
        RogueSignalling.answers.next({ linkId, sdp, nonce });
    }

    @rpc.action()
    close(linkId: LinkId): void {
        void linkId;
    }
}

async function linkedPeer(url: string, id: string, options: Partial<DirectLinksOptions> = {}) {
    const peer = await Peer.connect({ url, id, features: { links: directLinks(options) }, expose: [[EchoController, EchoController.path]] });
    return resources.add(peer, p => p.close());
}

async function roguePeer(url: string, id: string): Promise<Peer> {
    return resources.add(await Peer.connect({ url, id, expose: [[RogueSignalling, LinksApi]] }), p => p.close());
}

function linkEvent(peer: Awaited<ReturnType<typeof linkedPeer>>, kind: LinkEvent['kind'], peerId: string): Promise<LinkEvent> {
    return firstValueFrom(peer.features.links.changes$.pipe(filter(event => event.kind === kind && event.peerId === peerId)));
}

function signalling(from: Peer, to: string) {
    return from.to(to).controller<LinksApi>(LinksApi);
}

/** A link an attacker opens with its own WebRTC code, signalled as itself; its proof claims `claimed` as offerer. */
async function rogueLink(rogue: Peer, target: string, claimed: string) {
    const connection = resources.add(new RTCPeerConnection({ iceServers: [] }), c => c.close());
    const channel = connection.createDataChannel('switchboard', { negotiated: true, id: 0, ordered: true });
    channel.binaryType = 'arraybuffer';
    await connection.setLocalDescription(await connection.createOffer());
    await iceGathered(connection, 2000);
    const offerSdp = connection.localDescription!.sdp;
    const linkId = randomHex(16), nonce = randomHex(32);
    const answered = firstValueFrom(RogueSignalling.answers.pipe(filter(answer => answer.linkId === linkId)));
    await signalling(rogue, target).offer(linkId, offerSdp, nonce);
    const answer = await answered;
    const opened = new Promise(resolve => channel.onopen = resolve);
    await connection.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    await opened;
    // One record per data-channel message: kind, length (u32, little-endian), bytes.
    const send = (kind: number, bytes: Uint8Array) => {
        const message = new Uint8Array(5 + bytes.byteLength);
        message[0] = kind;
        new DataView(message.buffer).setUint32(1, bytes.byteLength, true);
        message.set(bytes, 5);
        channel.send(message);
    };
    const transcript = {
        linkId, offerer: claimed, answerer: target, offerFingerprint: fingerprintOf(offerSdp)!, answerFingerprint: fingerprintOf(answer.sdp)!,
        offerNonce: nonce, answerNonce: answer.nonce,
    };
    send(0, await signLink(transcript, 'offerer'));
    return { linkId, send };
}

describe('direct links: attacks', () => {
    it('a third peer cannot answer an offer it was not sent', async () => {
        const broker = await resources.broker();
        const alice = await linkedPeer(broker.url, 'alice', { allow: () => true });
        await roguePeer(broker.url, 'bob');
        const mallory = await roguePeer(broker.url, 'mallory');
        // Bob takes the offer and never answers; mallory learnt the link ID and answers in his place.
        const offered = firstValueFrom(RogueSignalling.offers);
        const opening = alice.features.links.open('bob').catch(error => error);
        const offer = await offered;

        const fake = resources.add(new RTCPeerConnection({ iceServers: [] }), c => c.close());
        fake.createDataChannel('switchboard', { negotiated: true, id: 0 });
        await fake.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
        await fake.setLocalDescription(await fake.createAnswer());
        const refused = await signalling(mallory, 'alice').answer(offer.linkId, fake.localDescription!.sdp, randomHex(32)).catch(error => error);
        expect(refused).toBeInstanceOf(AccessDenied);
        expect(refused.reason).toBe('link-unknown');
        expect(alice.features.links.list()).toEqual([expect.objectContaining({ peerId: 'bob', state: 'connecting', linkId: offer.linkId })]);
        alice.features.links.close('bob');
        await opening;
    });

    it('a replayed offer or answer is refused', async () => {
        const broker = await resources.broker();
        const alice = await linkedPeer(broker.url, 'alice', { allow: () => true });
        const bob = await linkedPeer(broker.url, 'bob', { allow: () => true });
        const mallory = await roguePeer(broker.url, 'mallory');
        const answered = linkEvent(bob, 'open', 'alice');
        const link = await alice.features.links.open('bob');
        await answered;

        // The offer's link ID again, from a peer bob would otherwise link with.
        const replayedOffer = await signalling(mallory, 'bob').offer(link.linkId, 'v=0', randomHex(32)).catch(error => error);
        expect(replayedOffer).toBeInstanceOf(AccessDenied);
        expect(replayedOffer.reason).toBe('link-replayed');
        // Bob's answer again, after alice took it.
        const replayedAnswer = await signalling(bob, 'alice').answer(link.linkId, 'v=0', randomHex(32)).catch(error => error);
        expect(replayedAnswer).toBeInstanceOf(AccessDenied);
        expect(replayedAnswer.reason).toBe('link-unknown');
        expect(alice.features.links.list()).toEqual([expect.objectContaining({ peerId: 'bob', state: 'open' })]);
    });

    it('a peer cannot speak on a link in another\'s name: a proof claiming another identity closes the link', async () => {
        const broker = await resources.broker();
        const alice = await linkedPeer(broker.url, 'alice', { allow: () => true });
        const mallory = await roguePeer(broker.url, 'mallory');
        const closed = linkEvent(alice, 'closed', 'mallory');
        await rogueLink(mallory, 'alice', 'bob');
        expect((await closed).reason).toMatch(/did not prove the identity the broker vouched for/);
        expect(alice.features.links.list()).toEqual([]);
    });

    it('on a proven link, a frame naming a peer route (a source of its choosing) closes the link', async () => {
        const broker = await resources.broker();
        const alice = await linkedPeer(broker.url, 'alice', { allow: () => true });
        const mallory = await roguePeer(broker.url, 'mallory');
        const opened = linkEvent(alice, 'open', 'mallory');
        const { send } = await rogueLink(mallory, 'alice', 'mallory');
        await opened;

        const closed = linkEvent(alice, 'closed', 'mallory');
        send(1, serializeBinaryRpcMessage(createRpcMessagePeer(1, RpcTypes.Ping, new Uint8Array(16), 'bob')));
        expect((await closed).reason).toMatch(/route 3/);
    });

    it('a peer cannot churn links: a second offer within a second of its first is refused', async () => {
        const broker = await resources.broker();
        await linkedPeer(broker.url, 'alice', { allow: () => true });
        const mallory = await roguePeer(broker.url, 'mallory');
        const offer = async () => {
            const connection = resources.add(new RTCPeerConnection({ iceServers: [] }), c => c.close());
            connection.createDataChannel('switchboard', { negotiated: true, id: 0 });
            await connection.setLocalDescription(await connection.createOffer());
            return signalling(mallory, 'alice').offer(randomHex(16), connection.localDescription!.sdp, randomHex(32)).catch(error => error);
        };
        expect(await offer()).toBeUndefined();
        const refused = await offer();
        expect(refused).toBeInstanceOf(AccessDenied);
        expect(refused.reason).toBe('link-busy');
    });

    it('the default policy: no link with a peer this one has neither called nor been called by', async () => {
        const broker = await resources.broker();
        await linkedPeer(broker.url, 'alice');
        const mallory = await roguePeer(broker.url, 'mallory');
        const refused = await signalling(mallory, 'alice').offer(randomHex(16), 'v=0', randomHex(32)).catch(error => error);
        expect(refused).toBeInstanceOf(AccessDenied);
        expect(refused.reason).toBe('links-policy');
    });
});
