import { LinksUnavailable } from '@switchboard/protocol';

/** The part of WebRTC that links use: the browser's `RTCPeerConnection`, or `@roamhq/wrtc`'s in Node. */
export type PeerConnectionClass = new (configuration?: RTCConfiguration) => RTCPeerConnection;

const NODE_WEBRTC_PACKAGE = '@roamhq/wrtc';

/**
 * The WebRTC implementation for this platform: the one given, the platform's own (browsers), or the optional
 * `@roamhq/wrtc` package (Node). LinksUnavailable when there is none: the peer then calls only through the broker.
 */
export function findPeerConnection(given?: PeerConnectionClass): PeerConnectionClass | LinksUnavailable {
    if (given) return given;
    const platform = (globalThis as { RTCPeerConnection?: PeerConnectionClass }).RTCPeerConnection;
    if (platform) return platform;
    try {
        // Through a variable, so that browser bundlers do not try to resolve a Node-only package.
        const name = NODE_WEBRTC_PACKAGE;
        const load = nodeRequire();
        const loaded = load ? load(name) as { RTCPeerConnection?: PeerConnectionClass } : undefined;
        if (loaded?.RTCPeerConnection) return loaded.RTCPeerConnection;
    } catch (error) {
        return new LinksUnavailable(
            `Direct links need WebRTC: this platform has no RTCPeerConnection and ${NODE_WEBRTC_PACKAGE} could not be loaded ` +
            `(${error instanceof Error ? error.message.split('\n')[0] : error}). Install it (npm install ${NODE_WEBRTC_PACKAGE}) ` +
            'or pass `directLinks({ peerConnection })`; until then every call goes through the broker.',
        );
    }
    return new LinksUnavailable(`Direct links need WebRTC: no RTCPeerConnection on this platform. Install ${NODE_WEBRTC_PACKAGE}; until then every call goes through the broker.`);
}

/**
 * Node's `require`: the module's own in CommonJS; in an ES module (no `require`) one resolving from the working
 * directory, where the app's node_modules are. Undefined in browsers.
 */
function nodeRequire(): ((name: string) => unknown) | undefined {
    if (typeof require === 'function') return require;
    const process = (globalThis as { process?: { cwd(): string, getBuiltinModule?(name: string): unknown } }).process;
    const module = process?.getBuiltinModule?.('module') as { createRequire(path: string): (name: string) => unknown } | undefined;
    return module?.createRequire(`${process!.cwd()}/`);
}

/** Resolves once the connection has gathered its ICE candidates, or after `timeoutMs` with what it has. */
export function iceGathered(connection: RTCPeerConnection, timeoutMs: number): Promise<void> {
    if (connection.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise(resolve => {
        const done = () => {
            clearTimeout(timer);
            connection.removeEventListener('icegatheringstatechange', changed);
            resolve();
        };
        const changed = () => {
            if (connection.iceGatheringState === 'complete') done();
        };
        const timer = setTimeout(done, timeoutMs);
        connection.addEventListener('icegatheringstatechange', changed);
    });
}
