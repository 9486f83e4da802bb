import { MemoryDatabaseAdapter } from '@deepkit/orm';
import { ReflectionClass } from '@deepkit/type';

/** An adapter that keeps a copy of its data elsewhere and must hear when the data changed. */
export interface ChangeListeningAdapter {
    changed(): void;
}

export function listensForChanges(adapter: object): adapter is ChangeListeningAdapter {
    return typeof (adapter as Partial<ChangeListeningAdapter>).changed === 'function';
}

const SAVE_AFTER_MS = 200;

/**
 * Deepkit's in-memory adapter, copied to Web Storage (`sessionStorage`, `localStorage`), so a browser peer's
 * history, outbox and reclaim secret survive a page reload. Each entity is one JSON item under `<key>:<entity>`;
 * the in-memory rows are already JSON-safe (Deepkit stores them serialized). Saved shortly after each change and
 * when the page is hidden or unloaded.
 *
 * Use `sessionStorage` for a peer ID per tab: two tabs sharing one copy would share a reclaim secret and keep
 * taking the ID from each other.
 */
export class WebStorageAdapter extends MemoryDatabaseAdapter implements ChangeListeningAdapter {
    protected timer?: ReturnType<typeof setTimeout>;

    constructor(protected key: string, protected storage: Storage) {
        super();
        const flush = () => this.save();
        globalThis.addEventListener?.('pagehide', flush);
        globalThis.addEventListener?.('visibilitychange', flush);
    }

    override getStore<T>(schema: ReflectionClass<T>) {
        const loaded = this.store.has(schema);
        const store = super.getStore(schema);
        if (!loaded) {
            const saved = this.storage.getItem(this.itemKey(schema));
            if (saved) {
                const { autoIncrement, items } = JSON.parse(saved) as { autoIncrement: number, items: [unknown, T][] };
                store.autoIncrement = autoIncrement;
                for (const [primaryKey, row] of items) store.items.set(primaryKey, row);
            }
        }
        return store;
    }

    changed(): void {
        this.timer ??= setTimeout(() => this.save(), SAVE_AFTER_MS);
    }

    save(): void {
        clearTimeout(this.timer);
        this.timer = undefined;
        for (const [schema, store] of this.store) {
            this.storage.setItem(this.itemKey(schema), JSON.stringify({ autoIncrement: store.autoIncrement, items: [...store.items] }));
        }
    }

    override disconnect(force?: boolean): void {
        this.save();
        super.disconnect(force);
    }

    protected itemKey(schema: ReflectionClass<unknown>): string {
        return `${this.key}:${schema.getName()}`;
    }
}
