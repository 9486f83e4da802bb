import { AutoIncrement, entity, Index, PrimaryKey } from '@deepkit/type';

/**
 * Writes to one replicated map, as Yjs updates: loading applies them in order. Writes of one turn of the event loop
 * share a row, and the rows of a map are folded into one now and then (see MapStore).
 */
@(entity.name('state_update').collection('state_updates'))
export class StateUpdateRecord {
    id: number & PrimaryKey & AutoIncrement = 0;

    constructor(public name: string & Index, public data: Uint8Array) {
    }
}
