import { setImmediate as nextTurn } from 'timers/promises';
import { OutgoingFrames } from '@switchboard/protocol/internal';

const frame = (byte: number) => new Uint8Array([byte, byte]);

/**
 * How the SDK and the broker write frames to a socket: a lone frame leaves at once (a call made in a quiet turn does
 * not wait for the end of the turn), frames that follow it in the same turn leave together, and a busy socket keeps
 * batching. Order is kept throughout.
 */
describe('outgoing frames', () => {
    it('sends the first frame of a quiet turn at once and batches the ones that follow it', async () => {
        const sent: number[][] = [];
        const outgoing = new OutgoingFrames(message => sent.push([...message]));
        outgoing.push(frame(1));
        expect(sent).toEqual([[1, 1]]);
        outgoing.push(frame(2));
        outgoing.push(frame(3));
        expect(sent).toEqual([[1, 1]]);
        await nextTurn();
        expect(sent).toEqual([[1, 1], [2, 2, 3, 3]]);
    });

    it('keeps batching while the socket is busy, and sends at once again after a quiet turn', async () => {
        const sent: number[][] = [];
        const outgoing = new OutgoingFrames(message => sent.push([...message]));
        outgoing.push(frame(1));
        outgoing.push(frame(2));
        outgoing.push(frame(3));
        await nextTurn();
        // The last turn wrote several frames: this turn's first one waits for its batch.
        outgoing.push(frame(4));
        outgoing.push(frame(5));
        expect(sent).toEqual([[1, 1], [2, 2, 3, 3]]);
        await nextTurn();
        expect(sent).toEqual([[1, 1], [2, 2, 3, 3], [4, 4, 5, 5]]);
        // A turn with one frame, then a quiet one: the next frame leaves at once.
        outgoing.push(frame(6));
        await nextTurn();
        await nextTurn();
        outgoing.push(frame(7));
        expect(sent).toEqual([[1, 1], [2, 2, 3, 3], [4, 4, 5, 5], [6, 6], [7, 7]]);
    });
});
