import { RpcControllerState } from '@deepkit/rpc';
import { onRpcAction } from '@deepkit/rpc';
import { firstValueFrom, isObservable, Observable, Subject } from 'rxjs';
import { filter } from 'rxjs/operators';
import { AccessDenied, Disconnected, LinksUnavailable, PeerNotFound, PeerOffline, RateLimited, Timeout, LINKS_PATH, LinksApi } from '@switchboard/protocol';
import { CallDeadline } from '../../call-deadline';
import { CallerContext } from '../../caller-context';
import type { FeatureContext } from '../../feature';
import type { CallInvoker, CallOptions } from '../../remote-peer';
import { DirectLink } from './direct-link';
import { defaultLinkLimits, LinkLimits } from './link-channel';
import { contactsOnly, LinkMemory, LinkPolicy } from './link-policy';
import { randomHex } from './link-proof';
import { resumableStream } from './resumable-stream';
import { findPeerConnection, PeerConnectionClass } from './webrtc';

export interface DirectLinksOptions {
    /** WebRTC; default the platform's `RTCPeerConnection`, else the optional `@roamhq/wrtc` package. */
    peerConnection?: PeerConnectionClass;
    /** ICE servers and the like; default none: host candidates only (peers on one network, or with public addresses). */
    rtcConfiguration?: RTCConfiguration;
    /** Whether this app wants a link with `peerId`, asked on both sides; default: peers it has called or been called by. */
    allow: LinkPolicy;
    /** Open a link in the background after a call to a peer the policy allows (default true); else only `open()`. */
    auto: boolean;
    /** Links at most, open and opening; a new one closes the least recently used. */
    maxLinks: number;
    /** A link without calls for this long is closed. */
    idleMs: number;
    /** A link not open within this long is given up. */
    connectTimeoutMs: number;
    /** Waiting for ICE candidates before an SDP leaves with those gathered so far. */
    gatherTimeoutMs: number;
    /** After a failed or refused attempt, no automatic one to the same peer for this long. */
    retryAfterMs: number;
    /** The broker's gate, applied to what the other side sends on a link. */
    limits: LinkLimits;
}

/** A peer may offer a new link to replace the one it offered before after this long. */
const REOFFER_INTERVAL_MS = 1000;

export const defaultDirectLinksOptions: DirectLinksOptions = {
    allow: contactsOnly, auto: true, maxLinks: 16, idleMs: 5 * 60_000, connectTimeoutMs: 10_000, gatherTimeoutMs: 2_000,
    retryAfterMs: 30_000, limits: defaultLinkLimits,
};

/** One link as `peer.features.links.list()` shows it. */
export interface LinkInfo {
    peerId: string;
    linkId: string;
    state: 'connecting' | 'open';
    role: 'offerer' | 'answerer';
    callsSent: number;
    callsServed: number;
}

/** A change of path: a link opened or closed (`reason` says why), or an attempt was refused. */
export interface LinkEvent {
    kind: 'opening' | 'open' | 'closed';
    peerId: string;
    linkId: string;
    reason?: string;
}

/**
 * `peer.features.links`: direct WebRTC links to other peers, and the path calls take. A call to a peer with an open
 * link goes over it (same API, validation, CallerContext, deadlines, errors); otherwise through the broker. A call
 * in flight on a link that drops fails with Disconnected, unless its action is idempotent: then it is retried
 * through the broker within its deadline.
 *
 * No runtime type: it is a DI token of LinksController, and Deepkit's injector would reflect the class, whose
 * options reach the DOM's WebRTC types; in a browser bundle those types pull in most of lib.dom (Document, …) and
 * resolving them crashed the tab (tests/web/links-browser.test.ts).
 * @reflection never
 */
export class DirectLinks implements CallInvoker {
    /** Why links cannot be opened on this platform (calls go through the broker), or undefined. */
    readonly unavailable?: LinksUnavailable;
    protected readonly events = new Subject<LinkEvent>();
    /** One event per change of path. */
    readonly changes$: Observable<LinkEvent> = this.events.asObservable();
    protected links = new Map<string, DirectLink>();
    protected memory: LinkMemory;
    protected options: DirectLinksOptions;
    protected peerConnection?: PeerConnectionClass;
    protected sweeper?: ReturnType<typeof setInterval>;
    protected closed = false;

    constructor(protected context: FeatureContext, options: Partial<DirectLinksOptions> = {}) {
        this.options = { ...defaultDirectLinksOptions, ...options, limits: { ...defaultLinkLimits, ...options.limits } };
        this.memory = new LinkMemory(1000, this.options.retryAfterMs);
        const found = findPeerConnection(options.peerConnection);
        if (found instanceof LinksUnavailable) this.unavailable = found;
        else this.peerConnection = found;
    }

    /** After the peer's kernel exists: learn who calls us (not counting signalling), and start closing idle links. */
    started(): void {
        this.context.kernel.listen(onRpcAction, event => {
            if (event.data.phase !== 'start' || event.data.controller.controllerName === LINKS_PATH) return;
            const caller = event.data.context.injector.get(CallerContext);
            if (caller?.peerId) this.memory.contacted(caller.peerId);
        });
        this.sweeper = setInterval(() => this.closeIdle(), Math.min(this.options.idleMs / 2, 30_000));
        this.sweeper.unref?.();
    }

    /** Links open and opening. */
    list(): LinkInfo[] {
        return [...this.links.values()].filter(link => link.state !== 'closed').map(link => ({
            peerId: link.peerId, linkId: link.id, state: link.state as LinkInfo['state'], role: link.role,
            callsSent: link.callsSent, callsServed: link.callsServed,
        }));
    }

    /** The open link to `peerId`, if any. */
    linkTo(peerId: string): DirectLink | undefined {
        const link = this.links.get(peerId);
        return link?.state === 'open' ? link : undefined;
    }

    /**
     * Opens a link to `peerId` (or waits for the one opening, from either side) and resolves once it carries calls.
     * Rejects with LinksUnavailable, AccessDenied (the other side's policy or limits), or Timeout.
     */
    async open(peerId: string, timeoutMs = this.options.connectTimeoutMs): Promise<LinkInfo> {
        if (this.unavailable) throw this.unavailable;
        if (!this.linkTo(peerId)) {
            const opened = firstValueFrom(this.changes$.pipe(filter(event => event.peerId === peerId && event.kind !== 'opening')));
            // Rejects when the peer closes first; only the race below may observe that.
            opened.catch(() => undefined);
            const attempt = this.links.get(peerId) ? Promise.resolve() : this.offer(peerId);
            let timer: ReturnType<typeof setTimeout> | undefined;
            const expired = new Promise<never>((resolve, reject) => timer = setTimeout(() => reject(new Timeout(`No direct link to "${peerId}" within ${timeoutMs} ms.`, timeoutMs)), timeoutMs));
            try {
                await Promise.race([attempt, expired]);
                const event = await Promise.race([opened, expired]);
                if (event.kind === 'closed') throw new Disconnected(`The direct link to "${peerId}" could not be opened: ${event.reason}. Calls go through the broker.`);
            } finally {
                clearTimeout(timer);
            }
        }
        return this.list().find(link => link.peerId === peerId && link.state === 'open')!;
    }

    /** Closes the link to `peerId` (calls go through the broker again) and tells the other side. */
    close(peerId: string, reason = 'closed by this peer'): void {
        const link = this.links.get(peerId);
        if (!link) return;
        link.close(reason);
        this.signal(peerId, api => api.close(link.id));
    }

    /** Whether a call to `peerId` made now goes over a link (the path a chat message records). */
    isDirect(peerId: string): boolean {
        return !!this.linkTo(peerId);
    }

    directPath(peerId: string): CallInvoker | undefined {
        return this.closed || this.unavailable ? undefined : this;
    }

    async invoke(peerId: string, controller: RpcControllerState, method: string, args: unknown[], options: CallOptions): Promise<any> {
        const host = this.context.peer;
        const link = controller.controller === LINKS_PATH ? undefined : this.linkTo(peerId);
        if (!link) {
            if (controller.controller !== LINKS_PATH) this.calledWithoutLink(peerId);
            return host.invoke(peerId, controller, method, args, options);
        }
        const deadline = new CallDeadline(options.timeout ?? host.callTimeoutMs, `peer "${peerId}" over its direct link`);
        try {
            const result = await link.call(controller, method, args, deadline);
            const position = options.resumable?.[method];
            if (position === undefined || !isObservable(result)) return result;
            // A stream the contract can restart from a position: when the link drops, it goes on through the broker.
            const start = Number(args[position] ?? 0);
            return resumableStream(result, start, error => error instanceof Disconnected && link.state === 'closed', from => {
                const again = [...args];
                again[position] = from;
                return host.invoke(peerId, controller, method, again, options);
            });
        } catch (caught) {
            const error = caught instanceof Timeout && !caught.stage && deadline.passed() ? deadline.timeout() : caught;
            // Over the other side's rate: an idempotent call tries the broker (which retries with backoff).
            if (error instanceof RateLimited && options.idempotent?.includes(method) && !deadline.passed()) {
                return host.invoke(peerId, controller, method, args, { ...options, timeout: deadline.remainingMs() });
            }
            if (!(error instanceof Disconnected) || link.state !== 'closed') throw error;
            // The link dropped under the call: whether the other side ran it is unknown.
            if (!options.idempotent?.includes(method) || deadline.passed()) {
                throw new Disconnected(`The direct link to "${peerId}" closed before ${controller.controller}.${method} ended (${link.closeReason}); whether it ran is unknown. Later calls go through the broker; it is safe to retry idempotent calls.`);
            }
            return host.invoke(peerId, controller, method, args, { ...options, timeout: deadline.remainingMs() });
        } finally {
            deadline.end();
        }
    }

    /** A call to `peerId` through the broker: remember the contact, and link up in the background if allowed. */
    protected calledWithoutLink(peerId: string): void {
        this.memory.contacted(peerId);
        if (!this.options.auto || this.links.has(peerId) || !this.memory.mayRetry(peerId) || this.context.peer.state !== 'registered') return;
        if (!this.options.allow(peerId, true)) return;
        this.context.inBackground(this.offer(peerId).catch(() => undefined));
    }

    /** Offers a link to `peerId`; resolves once the offer was accepted (the link then forms on its own). */
    protected async offer(peerId: string): Promise<void> {
        if (this.unavailable || !this.peerConnection) throw this.unavailable;
        if (!this.options.allow(peerId, this.memory.hasContacted(peerId))) {
            throw new AccessDenied(`This app's link policy does not allow a link to "${peerId}".`, 'links-policy');
        }
        const link = this.createLink(peerId, randomHex(16), 'offerer');
        try {
            const sdp = await link.offer();
            await this.context.peer.to(peerId).controller<LinksApi>(LinksApi, { timeout: this.options.connectTimeoutMs }).offer(link.id, sdp, link.nonce);
        } catch (error) {
            link.close(`the offer failed: ${error instanceof Error ? error.message : error}`);
            // Away is no failed link: the next call once it is back tries again (a relayed conversation upgrades).
            if (error instanceof PeerOffline || error instanceof PeerNotFound) this.memory.succeeded(peerId);
            throw error;
        }
    }

    /** Signalling: `from` (verified by the broker) offers a link. */
    async offered(from: string, linkId: string, sdp: string, nonce: string): Promise<void> {
        if (this.unavailable || this.closed) throw new AccessDenied(`Peer "${this.context.peer.id}" opens no direct links.`, 'links-off');
        if (!this.memory.firstSight(linkId)) throw new AccessDenied('This link ID was offered before: a replayed offer is refused.', 'link-replayed');
        if (!this.options.allow(from, this.memory.hasContacted(from))) {
            throw new AccessDenied(`Peer "${this.context.peer.id}" links only with peers its app allows.`, 'links-policy');
        }
        const existing = this.links.get(from);
        // Both offered at once: the offer of the peer with the smaller ID wins, on both sides.
        if (existing?.state === 'connecting' && existing.role === 'offerer' && this.context.peer.id < from) {
            throw new AccessDenied('Both peers offered a link at once; this peer\'s offer goes on.', 'link-glare');
        }
        // A peer may offer anew (it restarted, or lost its side of the link), but not churn links faster than that.
        if (existing?.role === 'answerer' && performance.now() - existing.createdAt < REOFFER_INTERVAL_MS) {
            throw new AccessDenied(`A link from you was offered less than ${REOFFER_INTERVAL_MS} ms ago; retry later.`, 'link-busy');
        }
        existing?.close('replaced by a new link from the same peer');
        const link = this.createLink(from, linkId, 'answerer');
        this.context.inBackground((async () => {
            try {
                const answer = await link.answer(sdp, nonce);
                await this.context.peer.to(from).controller<LinksApi>(LinksApi, { timeout: this.options.connectTimeoutMs }).answer(linkId, answer, link.nonce);
            } catch (error) {
                link.close(`the answer failed: ${error instanceof Error ? error.message : error}`);
            }
        })());
    }

    /** Signalling: `from` answers our offer `linkId`; only the peer we offered it to may. */
    async answered(from: string, linkId: string, sdp: string, nonce: string): Promise<void> {
        const link = this.links.get(from);
        if (!link || link.id !== linkId || !link.awaitsAnswer()) {
            throw new AccessDenied('No offer of this peer awaits this answer from you.', 'link-unknown');
        }
        await link.answered(sdp, nonce).catch(error => {
            link.close(`the answer could not be applied: ${error instanceof Error ? error.message : error}`);
            throw new AccessDenied('The answer could not be applied.', 'link-invalid');
        });
    }

    /** Signalling: `from` closed link `linkId`. */
    remoteClosed(from: string, linkId: string): void {
        const link = this.links.get(from);
        if (link?.id === linkId) link.close(`closed by ${from}`);
    }

    protected createLink(peerId: string, linkId: string, role: 'offerer' | 'answerer'): DirectLink {
        this.makeRoom();
        const link = new DirectLink({
            linkId, role, localPeerId: this.context.peer.id, remotePeerId: peerId, localNonce: randomHex(32),
            connection: new this.peerConnection!(this.options.rtcConfiguration ?? { iceServers: [] }),
            kernel: this.context.kernel, limits: this.options.limits, gatherTimeoutMs: this.options.gatherTimeoutMs,
            onOpen: opened => {
                clearTimeout(timer);
                this.memory.succeeded(peerId);
                this.events.next({ kind: 'open', peerId, linkId: opened.id });
            },
            onClose: (closed, reason) => {
                clearTimeout(timer);
                if (this.links.get(peerId) === closed) this.links.delete(peerId);
                if (reason.startsWith('not established')) this.memory.failed(peerId);
                this.events.next({ kind: 'closed', peerId, linkId: closed.id, reason });
            },
        });
        const timer = setTimeout(() => {
            if (link.state === 'connecting') link.close(`not open within ${this.options.connectTimeoutMs} ms`);
        }, this.options.connectTimeoutMs);
        this.links.set(peerId, link);
        this.events.next({ kind: 'opening', peerId, linkId });
        return link;
    }

    /** At the limit, the least recently used link goes first. */
    protected makeRoom(): void {
        while (this.links.size >= this.options.maxLinks) {
            const oldest = [...this.links.values()].sort((a, b) => a.lastUsedAt - b.lastUsedAt)[0];
            this.close(oldest.peerId, `least recently used of ${this.options.maxLinks} links`);
        }
    }

    protected closeIdle(): void {
        const now = performance.now();
        for (const link of [...this.links.values()]) {
            if (link.state === 'open' && now - link.lastUsedAt > this.options.idleMs) this.close(link.peerId, `idle for ${this.options.idleMs} ms`);
        }
    }

    /** Tells `peerId` something through the broker, in the background; failures are not the caller's concern. */
    protected signal(peerId: string, send: (api: ReturnType<DirectLinks['signalling']>) => Promise<void>): void {
        if (this.context.peer.state !== 'registered') return;
        this.context.inBackground(send(this.signalling(peerId)).catch(() => undefined));
    }

    protected signalling(peerId: string) {
        return this.context.peer.to(peerId).controller<LinksApi>(LinksApi, { timeout: this.options.connectTimeoutMs });
    }

    /** Closes every link; safe to call twice. */
    shutdown(): void {
        if (this.closed) return;
        this.closed = true;
        clearInterval(this.sweeper);
        for (const link of [...this.links.values()]) link.close('this peer closed');
        this.events.complete();
    }
}
