/**
 * Runs work for one key at a time, in the order it was asked for; different keys run side by side. A transaction's
 * record is read, judged and written under its key, so a decision and a late vote cannot both act on a stale read.
 */
export class KeyedLock {
    protected tails = new Map<string, Promise<unknown>>();

    run<T>(key: string, work: () => Promise<T>): Promise<T> {
        const previous = this.tails.get(key) ?? Promise.resolve();
        const next = previous.then(work, work);
        const tail = next.catch(() => undefined);
        this.tails.set(key, tail);
        void tail.then(() => {
            if (this.tails.get(key) === tail) this.tails.delete(key);
        });
        return next;
    }

    /** Resolves when everything asked for so far has run. */
    async idle(): Promise<void> {
        await Promise.all([...this.tails.values()]);
    }
}
