import * as Y from 'yjs';

/** Local edits carry this origin, so the binding does not write them back into the textarea. */
const LOCAL = Symbol('textarea');

/**
 * Keeps a `<textarea>` and a `Y.Text` equal both ways. A local edit becomes one delete + insert at the changed span
 * (a textarea reports the new value, not the edit); a remote edit moves the caret by what changed before it.
 */
export function bindTextarea(textarea: HTMLTextAreaElement, text: Y.Text): () => void {
    textarea.value = text.toString();

    const onInput = () => {
        const before = text.toString();
        const after = textarea.value;
        let start = 0;
        while (start < before.length && start < after.length && before[start] === after[start]) start++;
        let end = 0;
        while (end < before.length - start && end < after.length - start
            && before[before.length - 1 - end] === after[after.length - 1 - end]) end++;
        text.doc!.transact(() => {
            const removed = before.length - start - end;
            if (removed > 0) text.delete(start, removed);
            const inserted = after.slice(start, after.length - end);
            if (inserted) text.insert(start, inserted);
        }, LOCAL);
    };

    const onChange = (event: Y.YTextEvent) => {
        if (event.transaction.origin === LOCAL) return;
        let { selectionStart, selectionEnd } = textarea;
        let index = 0;
        for (const op of event.delta) {
            if (op.retain) index += op.retain;
            else if (typeof op.insert === 'string') {
                // Text inserted right at the caret stays after it: our next keystroke then follows our own last
                // character, and two people typing at the same spot do not interleave letter by letter.
                if (index < selectionStart) selectionStart += op.insert.length;
                if (index < selectionEnd) selectionEnd += op.insert.length;
                index += op.insert.length;
            } else if (op.delete) {
                selectionStart -= Math.max(0, Math.min(op.delete, selectionStart - index));
                selectionEnd -= Math.max(0, Math.min(op.delete, selectionEnd - index));
            }
        }
        textarea.value = text.toString();
        textarea.setSelectionRange(selectionStart, selectionEnd);
    };

    textarea.addEventListener('input', onInput);
    text.observe(onChange);
    return () => {
        textarea.removeEventListener('input', onInput);
        text.unobserve(onChange);
    };
}
