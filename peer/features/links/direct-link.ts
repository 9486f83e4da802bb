import {
    ClientTransportAdapter, createRpcMessage, rpcEncodeError, rpcError, RpcControllerState, RpcKernelConnection, RpcMessageRouteType, RpcTypes,
    serializeBinaryRpcMessage, TransportClientConnection,
} from '@deepkit/rpc';
import { typeOf } from '@deepkit/type';
import { RateLimited } from '@switchboard/protocol';
import { Route, SwitchboardFrame } from '@switchboard/protocol/internal';
import { CallDeadline } from '../../call-deadline';
import { CallerContext } from '../../caller-context';
import { PeerKernel } from '../../kernel';
import { LinkClient } from './link-client';
import { LinkChannel, LinkLimits, LinkMessage, LinkMessageKind } from './link-channel';
import { fingerprintOf, LinkRole, LinkTranscript, signLink, verifyLink } from './link-proof';
import { iceGathered } from './webrtc';

export type LinkState = 'connecting' | 'open' | 'closed';

export interface DirectLinkOptions {
    linkId: string;
    role: LinkRole;
    localPeerId: string;
    remotePeerId: string;
    localNonce: string;
    connection: RTCPeerConnection;
    kernel: PeerKernel;
    limits: LinkLimits;
    /** How long to wait for ICE candidates before sending an SDP with those gathered so far. */
    gatherTimeoutMs: number;
    /** The link proved both identities and carries calls now. */
    onOpen(link: DirectLink): void;
    /** The link closed (for good): by either side, a lost connection, or a refusal. */
    onClose(link: DirectLink, reason: string): void;
}

/** Frames that may wait while the other side's proof is being verified (it may send calls right after its proof). */
const MAX_WAITING_FRAMES = 1024;

/**
 * One WebRTC data channel to one other peer, bound to both verified identities (link-proof.ts). Each side serves
 * its own PeerKernel to the other over it, with a CallerContext taken from the link's proof, never from a frame;
 * and calls the other side with a LinkClient (a PeerClient) whose transport is the channel (same validation, errors, timeouts).
 */
export class DirectLink {
    readonly id: string;
    readonly peerId: string;
    readonly role: LinkRole;
    /** performance.now() at creation. */
    readonly createdAt = performance.now();
    lastUsedAt = performance.now();
    state: LinkState = 'connecting';
    /** Calls made over this link (sent), for `peer.features.links` and tests. */
    callsSent = 0;
    callsServed = 0;
    closeReason = '';

    protected channel: LinkChannel;
    protected client?: LinkClient;
    protected clientConnection?: TransportClientConnection;
    protected served?: RpcKernelConnection;
    protected waiting?: [LinkMessageKind, Uint8Array, number][] = [];
    protected waitingBytes = 0;
    protected transcript?: LinkTranscript;
    protected remoteProven = false;
    protected controllers = new Map<string, RpcControllerState>();

    /** @internal Built by the peer, never by an app. */
    constructor(protected options: DirectLinkOptions) {
        this.id = options.linkId;
        this.peerId = options.remotePeerId;
        this.role = options.role;
        // Negotiated: both sides create the same channel, so nothing about it travels in-band before the proof.
        const channel = options.connection.createDataChannel('switchboard', { negotiated: true, id: 0, ordered: true });
        this.channel = new LinkChannel(channel, options.limits, {
            message: (kind, bytes, type) => this.received(kind, bytes, type),
            limited: (id, framesPerSecond) => this.send(LinkMessage.reply, errorFrame(id, new RateLimited(
                `Too much at once: peer "${this.options.localPeerId}" takes ${framesPerSecond} messages per second on a direct link. Slow down and retry.`, framesPerSecond,
            ))),
            refused: reason => this.close(`refused what ${this.peerId} sent: ${reason}`),
        });
        channel.addEventListener('open', () => void this.sendProof());
        channel.addEventListener('close', () => this.close('the data channel closed'));
        options.connection.addEventListener('connectionstatechange', () => {
            const state = options.connection.connectionState;
            // `disconnected`: ICE lost the other side (its process died, the network moved). It may come back, but
            // meanwhile calls would wait for their deadline; the broker is the better path, and a new link can form.
            if (state === 'disconnected' || state === 'failed' || state === 'closed') this.close(`the connection ${state}`);
        });
    }

    /** This side's secret contribution to the proof, sent with its SDP. */
    get nonce(): string {
        return this.options.localNonce;
    }

    /** An offer of ours that no answer has reached yet. */
    awaitsAnswer(): boolean {
        return this.role === 'offerer' && this.state === 'connecting' && !this.transcript;
    }

    /** Offerer: the offer to signal. */
    async offer(): Promise<string> {
        const { connection } = this.options;
        await connection.setLocalDescription(await connection.createOffer());
        return this.localSdp();
    }

    /** Answerer: takes the offer, returns the answer to signal. */
    async answer(offerSdp: string, offerNonce: string): Promise<string> {
        const { connection } = this.options;
        await connection.setRemoteDescription({ type: 'offer', sdp: offerSdp });
        await connection.setLocalDescription(await connection.createAnswer());
        const sdp = await this.localSdp();
        this.bind(offerSdp, sdp, offerNonce, this.options.localNonce);
        return sdp;
    }

    /** Offerer: takes the answer; the connection then forms. */
    async answered(answerSdp: string, answerNonce: string): Promise<void> {
        const { connection } = this.options;
        const offerSdp = connection.localDescription?.sdp ?? '';
        this.bind(offerSdp, answerSdp, this.options.localNonce, answerNonce);
        await connection.setRemoteDescription({ type: 'answer', sdp: answerSdp });
    }

    protected async localSdp(): Promise<string> {
        await iceGathered(this.options.connection, this.options.gatherTimeoutMs);
        const sdp = this.options.connection.localDescription?.sdp;
        if (!sdp) throw new Error('WebRTC produced no local description.');
        return sdp;
    }

    /** What both sides must agree on: fingerprints from the SDPs as signalled between the verified identities. */
    protected bind(offerSdp: string, answerSdp: string, offerNonce: string, answerNonce: string): void {
        const offerFingerprint = fingerprintOf(offerSdp);
        const answerFingerprint = fingerprintOf(answerSdp);
        if (!offerFingerprint || !answerFingerprint) throw new Error('An SDP without exactly one DTLS fingerprint: the link cannot be bound to an identity.');
        const offerer = this.role === 'offerer' ? this.options.localPeerId : this.peerId;
        const answerer = this.role === 'offerer' ? this.peerId : this.options.localPeerId;
        this.transcript = { linkId: this.id, offerer, answerer, offerFingerprint, answerFingerprint, offerNonce, answerNonce };
    }

    protected get remoteRole(): LinkRole {
        return this.role === 'offerer' ? 'answerer' : 'offerer';
    }

    protected async sendProof(): Promise<void> {
        if (!this.transcript || this.state === 'closed') return this.close('the channel opened before the signalling ended');
        try {
            this.channel.send(LinkMessage.proof, await signLink(this.transcript, this.role));
        } catch (error) {
            this.close(`could not send the proof: ${error instanceof Error ? error.message : error}`);
        }
    }

    protected received(kind: LinkMessageKind, bytes: Uint8Array, type: number): void {
        if (this.state === 'closed') return;
        if (kind === LinkMessage.proof) {
            this.verify(bytes).catch(error => this.close(`could not check the proof: ${error instanceof Error ? error.message : error}`));
            return;
        }
        if (this.waiting) {
            this.waitingBytes += bytes.byteLength;
            if (this.waiting.length >= MAX_WAITING_FRAMES || this.waitingBytes > this.options.limits.maxFrameBytes) return this.close('too much sent before its proof');
            this.waiting.push([kind, bytes, type]);
            return;
        }
        this.lastUsedAt = performance.now();
        if (kind === LinkMessage.reply) return this.clientConnection?.readBinary(bytes);
        // The client's "I decode Switchboard's errors" hello is for a broker; the caller's context already says so.
        if (type === SwitchboardFrame.Hello) return;
        this.callsServed++;
        this.served?.feed(bytes);
    }

    protected async verify(proof: Uint8Array): Promise<void> {
        if (this.remoteProven || !this.transcript) return this.close('a proof out of turn');
        this.remoteProven = true;
        const valid = await verifyLink(this.transcript, this.remoteRole, proof).catch(() => false);
        if (!valid) return this.close(`${this.peerId} did not prove the identity the broker vouched for`);
        if (this.isClosed()) return;
        this.serve();
        // The other side's calls (its client's handshake first) are served from now on, before our client connects:
        // each side's handshake waits for the other's kernel.
        const waiting = this.waiting ?? [];
        this.waiting = undefined;
        for (const [kind, bytes, type] of waiting) this.received(kind, bytes, type);
        try {
            await this.connectClient();
        } catch (error) {
            return this.close(`the link's client did not connect: ${error instanceof Error ? error.message : error}`);
        }
        if (this.isClosed()) return;
        this.state = 'open';
        this.lastUsedAt = performance.now();
        this.options.onOpen(this);
    }

    /** This peer's kernel for the other side, which is known by the link's proof. */
    protected serve(): void {
        const kernel = this.options.kernel;
        const injector = kernel.injector.createChildScope('rpc');
        injector.set(CallerContext, new CallerContext(`link:${this.id}`, this.peerId, '', true));
        const served = kernel.createConnection({
            writeBinary: frame => this.send(LinkMessage.reply, frame),
            close: () => this.close('closed by this peer'),
            clientAddress: () => `link:${this.peerId}`,
            bufferedAmount: () => this.channel.bufferedAmount,
        }, injector) as RpcKernelConnection;
        served.transportOptions.chunkSize = 0;
        served.myPeerId = this.options.localPeerId;
        this.served = served;
    }

    protected async connectClient(): Promise<void> {
        const transport: ClientTransportAdapter = {
            // No client-ID round trip: a link has no peer routes, and each side knows the other from the proof.
            supportsPeers: () => false,
            connect: connection => {
                this.clientConnection = connection;
                connection.onConnected({
                    writeBinary: frame => this.send(LinkMessage.call, frame),
                    close: () => undefined,
                    clientAddress: () => `link:${this.peerId}`,
                    bufferedAmount: () => this.channel.bufferedAmount,
                });
            },
        };
        const client = new LinkClient(transport, this.peerId, () => this.closeReason);
        client.transporter.writerOptions.chunkSize = 0;
        this.client = client;
        await client.connect();
    }

    protected send(kind: LinkMessageKind, frame: Uint8Array): void {
        if (this.state === 'closed' || !this.channel.open) return;
        try {
            this.channel.send(kind, frame);
        } catch (error) {
            // The channel's send buffer is full or it is closing: calls fail over to the broker.
            this.close(`could not send: ${error instanceof Error ? error.message : error}`);
        }
    }

    /**
     * Calls `controller.method` on the other side over this link, within `deadline`. Action types come from the
     * broker path's controller state when it has them (the same peer describes the same action).
     */
    async call(controller: RpcControllerState, method: string, args: unknown[], deadline: CallDeadline): Promise<unknown> {
        const client = this.client;
        if (this.state !== 'open' || !client) throw new Error('The link is not open.');
        this.lastUsedAt = performance.now();
        this.callsSent++;
        let state = this.controllers.get(controller.controller);
        if (!state) this.controllers.set(controller.controller, state = new RpcControllerState(controller.controller));
        const action = state.getState(method);
        if (!action.types) {
            const known = controller.getState(method).types;
            if (known) action.types = known;
            else await deadline.within('types', client.actionClient.loadActionTypes(state, method, { timeout: deadline.remainingMs() }));
        }
        // The lean call path, as through the broker: plain calls go as one Action frame and wait as one entry.
        return deadline.during('action', client.callAction(state, method, args, deadline.remainingMs()));
    }

    /** Re-reads the state after an await (TypeScript keeps the narrowing from before it). */
    protected isClosed(): boolean {
        return this.state === 'closed';
    }

    /** Closes the link (safe to call twice); calls in flight on it fail with Disconnected. */
    close(reason: string): void {
        if (this.state === 'closed') return;
        const wasOpen = this.state === 'open';
        this.state = 'closed';
        this.closeReason = reason;
        this.waiting = undefined;
        this.channel.stop();
        try {
            this.options.connection.close();
        } catch {
            // Already closed.
        }
        this.clientConnection?.onClose(reason);
        this.served?.close();
        this.options.onClose(this, wasOpen ? reason : `not established: ${reason}`);
    }
}

/** An error answer to call `id`, as a kernel would write it. */
function errorFrame(id: number, error: Error): Uint8Array {
    error.stack = '';
    return serializeBinaryRpcMessage(createRpcMessage(id, RpcTypes.Error, rpcEncodeError(error), Route.client as RpcMessageRouteType.client, typeOf<rpcError>()));
}
