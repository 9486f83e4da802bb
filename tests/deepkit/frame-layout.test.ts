import {
    createRpcCompositeMessage, createRpcCompositeMessageSourceDest, createRpcMessage, createRpcMessagePeer, createRpcMessageSourceDest,
    readBinaryRpcMessage, RpcMessageDefinition, RpcTypes, serializeBinaryRpcMessage,
} from '@deepkit/rpc';
import { typeOf } from '@deepkit/type';
import {
    bodyOffsetOf, destinationOf, FRAME_VERSION, frameId, frameType, ID_OFFSET, MIN_FRAME_SIZE, peerFrameHeaderLength, readUint32, Route, ROUTE_OFFSET,
    sourceOf, VERSION_OFFSET, writeFrameId, writePeerFrameHeader,
} from '../../shared/deepkit/frame-layout';
import { FrameHeader, inspectFrame } from '../../shared/frame-check';
import { SwitchboardFrame } from '../../shared/wire';

/**
 * Contract of shared/deepkit/frame-layout.ts: frames written by Deepkit's own writer are read the same by our header
 * readers as by Deepkit's reader, and frames we write ourselves are read by Deepkit as we meant them. Fails when a
 * Deepkit upgrade changes the frame layout.
 */
interface Body { text: string }
const body: Body = { text: 'hello' };
const source = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const destination = Uint8Array.from({ length: 16 }, (_, i) => 200 + i);

const written: [string, RpcMessageDefinition][] = [
    ['client, no body', createRpcMessage(7, RpcTypes.Ping, undefined, Route.client as 0)],
    ['client, body', createRpcMessage<Body>(70_000, RpcTypes.Action, body, Route.client as 0)],
    ['server, body', createRpcMessage<Body>(3, RpcTypes.ResponseActionSimple, body, Route.server as 1)],
    ['sourceDest, body', createRpcMessageSourceDest<Body>(2 ** 32 - 1, RpcTypes.ResponseActionSimple, source, destination, body)],
    ['peer, body', createRpcMessagePeer<Body>(12, RpcTypes.Action, source, 'bob.example-1', body)],
    ['peer, no body', createRpcMessagePeer(13, RpcTypes.ActionType, source, 'b')],
    ['composite', createRpcCompositeMessage(5, RpcTypes.ResponseActionResult, [{ type: RpcTypes.ResponseActionSimple, schema: typeOf<Body>(), body }])],
    ['composite sourceDest', createRpcCompositeMessageSourceDest(6, source, destination, RpcTypes.ResponseActionResult, [{ type: RpcTypes.Ack }])],
];

describe('Deepkit frame layout (shared/deepkit/frame-layout.ts)', () => {
    it.each(written)('reads a frame Deepkit wrote (%s) as Deepkit reads it', (_, definition) => {
        const frame = serializeBinaryRpcMessage(definition);
        const deepkit = readBinaryRpcMessage(frame);
        expect(readUint32(frame, 0)).toBe(frame.byteLength);
        expect(frame.byteLength).toBeGreaterThanOrEqual(MIN_FRAME_SIZE);
        expect(frame[VERSION_OFFSET]).toBe(FRAME_VERSION);
        expect(frameId(frame)).toBe(deepkit.id);
        expect(frame[ROUTE_OFFSET]).toBe(deepkit.routeType);
        expect(frame[ROUTE_OFFSET]).toBe(definition.routeType);
        expect(frameType(frame)).toBe(deepkit.type);
        expect(bodyOffsetOf(frame)).toBe(deepkit.bodyOffset);
        if (deepkit.routeType === Route.sourceDest || deepkit.routeType === Route.peer) expect(sourceOf(frame)).toEqual(deepkit.getSource());
        if (deepkit.routeType === Route.sourceDest) expect(destinationOf(frame)).toEqual(deepkit.getDestination());

        // The validating reader (inspectFrame) is built on the same layout.
        const header = inspectFrame(frame) as FrameHeader;
        expect(typeof header).toBe('object');
        expect(header).toEqual({
            size: frame.byteLength, id: deepkit.id, route: deepkit.routeType, composite: deepkit.composite, type: deepkit.type,
            bodyOffset: deepkit.bodyOffset, peerId: deepkit.routeType === Route.peer ? deepkit.getPeerId() : '',
        });
    });

    it('writes a peer frame header exactly as Deepkit writes the same frame', () => {
        const deepkit = serializeBinaryRpcMessage(createRpcMessagePeer<Body>(99, RpcTypes.Action, source, 'carol', body));
        const bodyBytes = deepkit.subarray(bodyOffsetOf(deepkit));
        const ours = new Uint8Array(peerFrameHeaderLength('carol') + bodyBytes.byteLength).fill(0xAA);
        writePeerFrameHeader(ours, 99, source, 'carol', RpcTypes.Action, bodyBytes.byteLength);
        ours.set(bodyBytes, peerFrameHeaderLength('carol'));
        expect(Buffer.from(ours)).toEqual(Buffer.from(deepkit));
        expect(readBinaryRpcMessage(ours).parseBody<Body>()).toEqual(body);
    });

    it('patches a message id where Deepkit reads it', () => {
        const frame = serializeBinaryRpcMessage(createRpcMessageSourceDest<Body>(1, RpcTypes.Error, source, destination, body));
        const two = new Uint8Array(frame.byteLength * 2);
        two.set(frame, 0);
        two.set(frame, frame.byteLength);
        writeFrameId(two, frame.byteLength, 123_456_789);
        expect(readBinaryRpcMessage(two.subarray(frame.byteLength)).id).toBe(123_456_789);
        expect(frameId(two, frame.byteLength)).toBe(123_456_789);
        expect(readUint32(two, ID_OFFSET)).toBe(1);
    });

    it("Switchboard's own frame types are not Deepkit's", () => {
        const deepkitTypes = new Set<unknown>(Object.values(RpcTypes).filter(value => typeof value === 'number'));
        for (const type of Object.values(SwitchboardFrame).filter(value => typeof value === 'number')) expect(deepkitTypes.has(type)).toBe(false);
    });
});
