import { rpc } from '@deepkit/rpc';
import { CallerContext } from '../../peer/caller-context';

/** What a victim peer saw: each call with the caller the broker vouched for. */
export class WitnessLog {
    readonly entries: { note: string, caller?: string }[] = [];
    protected waiters: { note: string, resolve: () => void }[] = [];
    protected releaseHeld!: () => void;
    readonly held = new Promise<void>(resolve => this.releaseHeld = resolve);

    add(note: string, caller?: string): void {
        this.entries.push({ note, caller });
        for (const waiter of this.waiters.filter(w => w.note === note)) waiter.resolve();
        this.waiters = this.waiters.filter(w => w.note !== note);
    }

    find(note: string): { note: string, caller?: string } | undefined {
        return this.entries.find(entry => entry.note === note);
    }

    /** Resolves when a call with `note` arrived. */
    arrival(note: string): Promise<void> {
        if (this.find(note)) return Promise.resolve();
        return new Promise(resolve => this.waiters.push({ note, resolve }));
    }

    /** Lets every pending `hold()` answer. */
    release(): void {
        this.releaseHeld();
    }
}

export interface WitnessApi {
    record(note: string): Promise<string>;
    hold(): Promise<string>;
}

/** Served by the victims of the spoofing section: it records who the peer believes is calling. */
@rpc.controller('chaos/witness')
export class WitnessController implements WitnessApi {
    constructor(protected log: WitnessLog, protected caller: CallerContext) {
    }

    @rpc.action()
    async record(note: string): Promise<string> {
        this.log.add(note, this.caller.peerId);
        return this.caller.peerId ?? '';
    }

    /** Answers only once the log is released: a call the victim's caller keeps pending. */
    @rpc.action()
    async hold(): Promise<string> {
        this.log.add('hold', this.caller.peerId);
        await this.log.held;
        return 'real';
    }
}
