import { randomBytes } from 'crypto';
import { Route } from '../../shared/wire';
import { actionBody, bson, clientFrame, frame, peerFrame, peerRoute, replyFrame, sourceDestRoute, Types } from './wire-frames';

/** What a generator may use: the sending connection's own id, and an honest peer to aim at. */
export interface FrameContext {
    source: Uint8Array;
    honestPeer: string;
    /** Frames of 15 MiB are few even in a full run; the rest of a kind's frames vary the small cases. */
    bigFrames: number;
}

export interface HostileKind {
    key: string;
    title: string;
    /** The `index`-th frame of this kind in the run (indexes run across all connections). */
    frame(index: number, context: FrameContext): Buffer;
}

const GiB = 2 ** 30;
const pick = <T>(index: number, choices: T[]): T => choices[index % choices.length];
/** Message ids spread over the whole u32 range, the way a fuzzer would pick them. */
const anyId = (index: number) => (index * 2654435761) >>> 0;

/**
 * Bodies of exactly 40 bytes whose BSON length fields claim 1 GiB: a decoder that trusts them allocates (or loops
 * over) a gigabyte for a 40-byte message.
 */
function hugeClaimBodies(): Buffer[] {
    const sized = (build: (body: Buffer) => void) => {
        const body = Buffer.alloc(40, 0x61);
        build(body);
        body[39] = 0;
        return body;
    };
    return [
        // The document length itself.
        sized(body => {
            body.writeInt32LE(GiB, 0);
            body[4] = 0x02; body.write('id\0', 5, 'latin1'); body.writeInt32LE(4, 8); body.write('abc\0', 12, 'latin1'); body[16] = 0;
        }),
        // A string element.
        sized(body => {
            body.writeInt32LE(40, 0);
            body[4] = 0x02; body.write('id\0', 5, 'latin1'); body.writeInt32LE(GiB, 8);
        }),
        // A binary element.
        sized(body => {
            body.writeInt32LE(40, 0);
            body[4] = 0x05; body.write('v\0', 5, 'latin1'); body.writeInt32LE(GiB, 7); body[11] = 0;
        }),
        // An embedded document.
        sized(body => {
            body.writeInt32LE(40, 0);
            body[4] = 0x03; body.write('args\0', 5, 'latin1'); body.writeInt32LE(GiB, 10);
        }),
        // An array.
        sized(body => {
            body.writeInt32LE(40, 0);
            body[4] = 0x04; body.write('a\0', 5, 'latin1'); body.writeInt32LE(GiB, 7);
        }),
    ];
}

const hugeBodies = hugeClaimBodies();

/** Kinds a–i of the hostile-input section (R3). */
export const hostileKinds: HostileKind[] = [
    {
        key: 'a',
        title: 'peer ID without terminating NUL',
        frame(index, { source }) {
            // 27 bytes: the header, the source and one byte of peer ID; Deepkit's reader scans for the NUL past the end.
            const id = index % 2 ? Buffer.from('b') : Buffer.alloc(1 + (index % 97), 0x62);
            const truncated = frame({ id: anyId(index), route: Route.peer, routeData: peerRoute(source, id, false), type: Types.Action }).subarray(0, 26 + id.length);
            truncated.writeUInt32LE(truncated.length, 0);
            return truncated;
        },
    },
    {
        key: 'b',
        title: 'size field that lies',
        frame(index) {
            const honest = clientFrame(anyId(index), Types.ActionType, actionBody('switchboard/broker', 'whoami'));
            const lies = [honest.length + 1, honest.length - 1, honest.length + 4096, 0, 11, 0xffffffff, 2 * honest.length];
            honest.writeUInt32LE(pick(index, lies) >>> 0, 0);
            // Some frames also end early, so a reader waiting for the claimed rest waits forever.
            return index % 5 === 4 ? honest.subarray(0, 12) : honest;
        },
    },
    {
        key: 'c',
        title: '40-byte BSON body claiming 1 GiB',
        frame(index, { source, honestPeer }) {
            const body = pick(Math.floor(index / 5), hugeBodies);
            const carriers = [
                () => frame({ id: anyId(index), route: Route.client, type: Types.Action, body }),
                () => frame({ id: anyId(index), route: Route.client, type: Types.PeerRegister, body }),
                () => frame({ id: anyId(index), route: Route.client, type: Types.Authenticate, body }),
                () => frame({ id: anyId(index), route: Route.peer, routeData: peerRoute(source, honestPeer), type: Types.Action, body }),
                () => frame({ id: anyId(index), route: Route.client, type: Types.Chunk, body }),
            ];
            return pick(index, carriers)();
        },
    },
    {
        key: 'd',
        title: 'chunks past their total; huge totals',
        frame(index) {
            // Per message id, a run of chunks: ids change every 50 frames, so each run starts with seq 0.
            const id = 7_000_000 + Math.floor(index / 50);
            const seq = index % 50;
            const variant = Math.floor(index / 50) % 4;
            const total = [100, 15 * 2 ** 20, 2 ** 40, Number.MAX_SAFE_INTEGER][variant];
            return clientFrame(id, Types.Chunk, { seq, total, v: Buffer.alloc(1024, seq) });
        },
    },
    {
        key: 'e',
        title: 'CallerIdentity (100) / CallerGone (101) written by a client',
        frame(index, { source, honestPeer }) {
            const forged = index % 2 ? source : randomBytes(16);
            const type = index % 3 === 0 ? Types.CallerGone : Types.CallerIdentity;
            const body = type === Types.CallerIdentity ? { peerId: 'admin', session: 'root' } : undefined;
            if (index % 7 === 6) return clientFrame(0, type, body);
            return peerFrame(0, forged, honestPeer, type, body);
        },
    },
    {
        key: 'f',
        title: 'floods of route types 0/1/4/200',
        frame(index) {
            const route = pick(index, [0, 1, 4, 200]);
            if (route === Route.client) return clientFrame(anyId(index), Types.Ping);
            if (route === Route.server) return frame({ id: anyId(index), route, type: Types.ResponseActionSimple, body: bson({ v: 1 }) });
            return frame({ id: anyId(index), route, routeData: randomBytes(index % 40), type: Types.Action, body: bson(actionBody('switchboard/broker', 'whoami')) });
        },
    },
    {
        key: 'g',
        title: '15 MiB / very long / newline-containing target peer ID',
        frame(index, { source, bigFrames }) {
            const body = actionBody('bench/echo', 'echo');
            if (index < bigFrames) return peerFrame(anyId(index), source, Buffer.alloc(15 * 2 ** 20, 0x78), Types.ActionType, body);
            const targets = ['x'.repeat(64 * 1024), 'y'.repeat(1024), 'chaos-bob\nadmin', 'chaos-bob\n', '\n', 'z'.repeat(65), Buffer.from([0xff, 0xfe, 0x80, 0x0a])];
            return peerFrame(anyId(index), source, pick(index, targets) as string | Uint8Array, Types.ActionType, body);
        },
    },
    {
        key: 'h',
        title: 'garbage, empty messages, truncated headers',
        frame(index) {
            const variant = index % 5;
            if (variant === 0) return randomBytes(index % 65);
            if (variant === 1) return Buffer.alloc(0);
            const honest = clientFrame(anyId(index), Types.ActionType, actionBody('switchboard/broker', 'whoami'));
            if (variant === 2) return honest.subarray(0, 1 + index % 11);
            if (variant === 3) {
                honest[4] = 2 + index % 250;
                return honest;
            }
            honest[11] = 200 + index % 56;
            return honest;
        },
    },
    {
        key: 'i',
        title: 'unsolicited replies (sourceDest to a random destination)',
        frame(index, { source }) {
            const type = pick(index, [Types.ResponseActionSimple, Types.Error, Types.Ack]);
            if (index % 4 === 3) return frame({ id: anyId(index), route: Route.sourceDest, routeData: sourceDestRoute(randomBytes(16), randomBytes(16)), type, body: bson({ v: 'forged' }) });
            return replyFrame(anyId(index), source, randomBytes(16), type, { v: 'forged' });
        },
    },
];
