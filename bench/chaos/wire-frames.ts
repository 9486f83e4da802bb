import { deserializeBSONWithoutOptimiser, serializeBSONWithoutOptimiser } from '@deepkit/bson';
import { Route } from '../../shared/wire';

/**
 * Deepkit RPC frames written byte by byte, so the harness can write what no honest encoder would:
 * <size u32 LE> <version u8 = 1> <id u32 LE> <route u8> [route data] <composite u8> <type u8> <body BSON>.
 * Route data: peer = 16-byte source + NUL-terminated peer ID; sourceDest = 16-byte source + 16-byte destination.
 */
export const Types = {
    Ack: 0, Error: 1, Chunk: 2, Ping: 4, Authenticate: 6, ActionType: 7, Action: 8, PeerRegister: 9,
    ClientId: 11, ClientIdResponse: 12, ResponseActionSimple: 16,
    CallerIdentity: 100, CallerGone: 101,
} as const;

export interface FrameParts {
    id: number;
    route: number;
    routeData?: Uint8Array;
    type: number;
    body?: Uint8Array;
    composite?: number;
    /** Written into the size field instead of the true length. */
    size?: number;
}

export function frame(parts: FrameParts): Buffer {
    const routeData = parts.routeData ?? new Uint8Array(0);
    const body = parts.body ?? new Uint8Array(0);
    const buffer = Buffer.alloc(4 + 1 + 4 + 1 + routeData.length + 2 + body.length);
    buffer.writeUInt32LE(parts.size ?? buffer.length, 0);
    buffer[4] = 1;
    buffer.writeUInt32LE(parts.id >>> 0, 5);
    buffer[9] = parts.route;
    buffer.set(routeData, 10);
    buffer[10 + routeData.length] = parts.composite ?? 0;
    buffer[11 + routeData.length] = parts.type;
    buffer.set(body, 12 + routeData.length);
    return buffer;
}

/** Route data of a peer frame. `peerId` may be any bytes; `terminated: false` leaves out the NUL. */
export function peerRoute(source: Uint8Array, peerId: string | Uint8Array, terminated = true): Buffer {
    const id = typeof peerId === 'string' ? Buffer.from(peerId, 'latin1') : peerId;
    return Buffer.concat([source, id, terminated ? Buffer.from([0]) : Buffer.alloc(0)]);
}

export function sourceDestRoute(source: Uint8Array, destination: Uint8Array): Buffer {
    return Buffer.concat([source, destination]);
}

export function bson(value: object): Uint8Array {
    return serializeBSONWithoutOptimiser(value);
}

/** A message to the broker itself (route client). */
export function clientFrame(id: number, type: number, body?: object): Buffer {
    return frame({ id, route: Route.client, type, body: body && bson(body) });
}

/** A request to another peer, with `source` as the sending connection. */
export function peerFrame(id: number, source: Uint8Array, target: string | Uint8Array, type: number, body?: object | Uint8Array): Buffer {
    return frame({ id, route: Route.peer, routeData: peerRoute(source, target), type, body: body instanceof Uint8Array ? body : body && bson(body) });
}

/** A reply travelling from `source` to `destination`. */
export function replyFrame(id: number, source: Uint8Array, destination: Uint8Array, type: number, body?: object): Buffer {
    return frame({ id, route: Route.sourceDest, routeData: sourceDestRoute(source, destination), type, body: body && bson(body) });
}

/** An action call's body: the arguments in parameter order (Deepkit's server reads them as a tuple). */
export function actionBody(controller: string, method: string, args: unknown[] = []): object {
    return { controller, method, args };
}

export interface ReceivedFrame {
    id: number;
    route: number;
    type: number;
    source?: Buffer;
    /** The body as a plain object; undefined when it has none or it does not decode. */
    body?: any;
}

/** Reads a frame the broker sent; null when it is not one (the harness reads, it does not trust). */
export function readFrame(data: Buffer): ReceivedFrame | null {
    if (data.length < 11 || data.readUInt32LE(0) !== data.length) return null;
    const route = data[9];
    let offset = 10;
    let source: Buffer | undefined;
    if (route === Route.peer) {
        source = data.subarray(10, 26);
        offset = data.indexOf(0, 26);
        if (offset < 0) return null;
        offset++;
    } else if (route === Route.sourceDest) {
        source = data.subarray(10, 26);
        offset = 42;
    }
    const type = data[offset + 1];
    let body: any;
    if (data.length > offset + 2) {
        try {
            body = deserializeBSONWithoutOptimiser(data, offset + 2);
        } catch {
            body = undefined;
        }
    }
    return { id: data.readUInt32LE(5), route, type, source, body };
}

/**
 * The stable code of an error frame: a typed Switchboard error carries `code`; clients that did not ask for typed
 * errors get `CODE: message`. Anything else is reported as untyped, with the start of its message.
 */
export function errorCode(received: ReceivedFrame): string {
    const body = received.body ?? {};
    const message = String(body.message ?? '');
    return body.properties?.code ?? /^([A-Z][A-Z_]+): /.exec(message)?.[1] ?? (body.classType || `untyped "${message.slice(0, 40)}"`);
}
