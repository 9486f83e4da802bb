import { Writer } from '@deepkit/bson';
import { Processor } from '@deepkit/type';

/**
 * Where Switchboard changes Deepkit's internals at run time (with sqlite-patch.ts for @deepkit/sqlite);
 * tests/deepkit/patches.test.ts fails loudly when a Deepkit upgrade moves what is patched here.
 *
 * Deepkit 1.0.19's BSON `Writer.writeArrayBuffer` copies binary values into the message one byte at a time: 30 % of a
 * file transfer's CPU went there (1.1 s per 64 MiB on the serving peer). A block copy writes the same bytes.
 */
const stockWriteArrayBuffer = Writer.prototype.writeArrayBuffer;
const BINARY_SUBTYPE_DEFAULT = 0;

export function blockCopyWriteArrayBuffer(this: Writer, value: ArrayBuffer | ArrayBufferView): void {
    // MongoDB-style Binary wrappers keep their bytes elsewhere: Deepkit's own path handles them.
    if ((value as { _bsontype?: string })._bsontype === 'Binary') return stockWriteArrayBuffer.call(this, value);
    const view = value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    this.writeUint32(view.byteLength);
    this.writeByte(BINARY_SUBTYPE_DEFAULT);
    this.buffer.set(view, this.offset);
    this.offset += view.byteLength;
}

export { stockWriteArrayBuffer };

if (typeof stockWriteArrayBuffer !== 'function') throw new Error('@deepkit/bson changed: Writer.prototype.writeArrayBuffer is gone; review shared/deepkit/patches.ts.');
Writer.prototype.writeArrayBuffer = blockCopyWriteArrayBuffer;

/**
 * Deepkit's type processor prints "Type computation took very long Nms for …" to the console whenever reflecting a
 * type takes over 100 ms — on a busy machine that is most cold starts of the broker (its DI container reflects
 * Deepkit's own migration commands). Users see it in their terminal, browser console and test output, and can do
 * nothing about it. The same computation, without the warning.
 */
const stockReflect = Processor.prototype.reflect;
if (typeof stockReflect !== 'function' || typeof Processor.prototype._reflect !== 'function') {
    throw new Error('@deepkit/type changed: Processor.reflect/_reflect are gone; review shared/deepkit/patches.ts.');
}
export function quietReflect(this: Processor, ...args: Parameters<Processor['reflect']>): ReturnType<Processor['reflect']> {
    return this._reflect(...args);
}
Processor.prototype.reflect = quietReflect;
