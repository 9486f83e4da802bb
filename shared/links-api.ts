import { ControllerSymbol } from '@deepkit/rpc';
import { MaxLength, MinLength, Pattern } from '@deepkit/type';

/**
 * Signalling of direct links (WebRTC data channels between two peers). It travels as ordinary peer calls through
 * the broker, so each side learns the other's identity from the broker (CallerContext), under the broker's send
 * policy. ICE candidates travel inside the SDP: each side waits (bounded) for its candidates before it sends.
 *
 * 1. The offerer calls `offer(linkId, sdp, nonce)` on the other peer; the answerer checks its policy and limits.
 * 2. The answerer calls `answer(linkId, sdp, nonce)` back; only the peer that was offered the link may answer it.
 * 3. Once the data channel opens, each side's first message proves it took part in exactly this signalling: an
 *    HMAC, keyed by both nonces, over the link ID, both peer IDs and both DTLS fingerprints (which WebRTC's DTLS
 *    handshake enforces). A third peer never sees the nonces; a changed SDP changes a fingerprint.
 */
export const LINKS_PATH = 'switchboard/links';

/** A link's ID: 128 random bits, hex. The answerer refuses an ID it has seen before (a replayed offer). */
export const LINK_ID_PATTERN = /^[0-9a-f]{32}$/;
export type LinkId = string & Pattern<typeof LINK_ID_PATTERN>;

/** 256 random bits, hex: each side's secret contribution to the link's proof. */
export const LINK_NONCE_PATTERN = /^[0-9a-f]{64}$/;
export type LinkNonce = string & Pattern<typeof LINK_NONCE_PATTERN>;

/** An SDP offer or answer with its candidates; a data-channel-only SDP is 1 to 3 KB. */
export type LinkSdp = string & MinLength<1> & MaxLength<16384>;

export interface LinksApi {
    /**
     * The caller proposes a link. AccessDenied when this peer's policy does not allow a link to the caller
     * (`links-policy`), the ID was seen before (`link-replayed`) or this peer links to no one (`links-off`).
     */
    offer(linkId: LinkId, sdp: LinkSdp, nonce: LinkNonce): Promise<void>;

    /** The answer to our offer; AccessDenied (`link-unknown`) from anyone but the peer we offered the link to. */
    answer(linkId: LinkId, sdp: LinkSdp, nonce: LinkNonce): Promise<void>;

    /** The caller closed (or gave up on) this link; ignored from anyone but the link's other end. */
    close(linkId: LinkId): Promise<void>;
}

export const LinksApi = ControllerSymbol<LinksApi>(LINKS_PATH, []);
