import * as Y from 'yjs';
import { MalformedMessage, PayloadTooLarge } from '@switchboard/protocol';

export interface UpdateRules {
    /** The map's root type in its Y.Doc: every item must belong to it. */
    root: string;
    maxUpdateBytes: number;
    maxKeyLength: number;
    /** Throws (ValidationError) when a stored value does not fit the map's type. */
    checkValue(stored: unknown): void;
}

/**
 * Checks an update from a remote member before it touches the document: only entries of this map (one JSON value
 * each, under a bounded key) or deletions. Nested Yjs types, text, documents and other roots are refused, so a
 * hostile member can neither smuggle another shape into the map nor make it hold what `T` does not allow.
 *
 * An item names its map and key only when it is the first of its key (Yjs infers them from the item it follows
 * otherwise); followers can only follow items of this map, since no other root is ever admitted.
 */
export function checkUpdate(update: Uint8Array, rules: UpdateRules): void {
    if (update.byteLength > rules.maxUpdateBytes) {
        throw new PayloadTooLarge(`A state update of ${update.byteLength} bytes exceeds this map's limit of ${rules.maxUpdateBytes} bytes.`, update.byteLength, rules.maxUpdateBytes);
    }
    let decoded: ReturnType<typeof Y.decodeUpdate>;
    try {
        decoded = Y.decodeUpdate(update);
    } catch {
        throw invalid('it is not a Yjs update');
    }
    for (const struct of decoded.structs) {
        if (!(struct instanceof Y.Item)) continue; // GC and Skip: ranges of deleted or absent structs, no content.
        // Decoded, `parent` is a root's name (a string), the ID of a nested type's item, or null (inferred).
        const parent = struct.parent as unknown;
        if (parent !== null && parent !== rules.root) throw invalid('an item belongs to another type than this map');
        if (struct.parentSub !== null && (typeof struct.parentSub !== 'string' || struct.parentSub.length > rules.maxKeyLength)) {
            throw invalid(`a key is longer than ${rules.maxKeyLength} characters`);
        }
        const content = struct.content;
        if (content instanceof Y.ContentDeleted) continue;
        if (!(content instanceof Y.ContentAny) || content.arr.length !== 1) throw invalid('an item is not a single JSON value');
        rules.checkValue(content.arr[0]);
    }
}

function invalid(why: string): MalformedMessage {
    return new MalformedMessage(`Refused a state update: ${why}. Write to replicated maps only through ReplicatedMap.`);
}
