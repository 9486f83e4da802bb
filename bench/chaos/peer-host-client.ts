import { ChildProgram } from './child-process';

export type HostEvent = { event: string } & Record<string, any>;

/** A process of SDK peers (peer-host.ts) that the harness drives, kills (-9) and freezes (SIGSTOP). */
export class PeerHost {
    protected nextId = 1;
    protected pending = new Map<number, { resolve(value: any): void, reject(error: Error): void }>();
    protected listeners = new Set<(event: HostEvent) => void>();
    protected partial = '';
    /** The process exited and its output is read to the end: no event of it is still to come. */
    readonly closed: Promise<void>;

    protected constructor(readonly name: string, readonly program: ChildProgram) {
        this.closed = new Promise(resolve => program.child.once('close', () => resolve()));
        program.child.stdout!.on('data', chunk => {
            this.partial += chunk;
            let newline: number;
            while ((newline = this.partial.indexOf('\n')) >= 0) {
                const line = this.partial.slice(0, newline);
                this.partial = this.partial.slice(newline + 1);
                if (line.startsWith('@chaos ')) this.received(JSON.parse(line.slice(7)));
            }
        });
        void program.exited.then(code => {
            for (const { reject } of this.pending.values()) reject(new Error(`peer host ${name} exited (${code})`));
            this.pending.clear();
        });
    }

    static async start(name: string, startTimeoutMs = 60_000): Promise<PeerHost> {
        const program = new ChildProgram('bench/chaos/peer-host.ts', []);
        try {
            await program.waitFor(/@chaos \{"event":"ready"\}/, startTimeoutMs);
        } catch (error) {
            await program.kill();
            throw error;
        }
        return new PeerHost(name, program);
    }

    get pid(): number {
        return this.program.pid;
    }

    get alive(): boolean {
        return this.program.alive;
    }

    /** Runs `op` in the host; rejects with its error, when it exits, or after `timeoutMs`. */
    request<T = any>(op: string, body: Record<string, unknown>, timeoutMs: number): Promise<T> {
        const id = this.nextId++;
        return new Promise<T>((resolve, reject) => {
            if (!this.program.alive) return reject(new Error(`peer host ${this.name} is not running`));
            const timer = setTimeout(() => {
                this.pending.delete(id);
                reject(new Error(`peer host ${this.name}: ${op} did not answer within ${timeoutMs} ms`));
            }, timeoutMs);
            this.pending.set(id, {
                resolve: value => (clearTimeout(timer), resolve(value)),
                reject: error => (clearTimeout(timer), reject(error)),
            });
            this.program.write(JSON.stringify({ id, op, ...body }));
        });
    }

    /** Every event from now on; returns the unsubscribe. */
    onEvent(listener: (event: HostEvent) => void): () => void {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
    }

    /** Resolves with the number of matching events seen once `count` arrived or `timeoutMs` passed. */
    waitForEvents(matches: (event: HostEvent) => boolean, count: number, timeoutMs: number): Promise<number> {
        return new Promise(resolve => {
            let seen = 0;
            const finish = () => {
                clearTimeout(timer);
                stop();
                resolve(seen);
            };
            const timer = setTimeout(finish, timeoutMs);
            const stop = this.onEvent(event => {
                if (matches(event) && ++seen >= count) finish();
            });
            if (count <= 0) finish();
        });
    }

    signal(signal: NodeJS.Signals): void {
        if (this.program.alive) this.program.child.kill(signal);
    }

    kill(): Promise<unknown> {
        // A frozen process gets SIGKILL too, but be sure it is not left stopped if that ever changes.
        this.signal('SIGCONT');
        return Promise.all([this.program.kill(), this.closed]);
    }

    /** Closes its peers (end of stdin), then kills it if it has not exited within `graceMs`. */
    async close(graceMs = 5000): Promise<void> {
        if (!this.program.alive) return;
        this.program.child.stdin!.end();
        const timer = setTimeout(() => void this.kill(), graceMs);
        await this.program.exited;
        clearTimeout(timer);
    }

    protected received(message: any): void {
        if ('reply' in message) {
            const waiter = this.pending.get(message.reply);
            this.pending.delete(message.reply);
            if (message.error !== undefined) waiter?.reject(new Error(message.error));
            else waiter?.resolve(message.result);
            return;
        }
        for (const listener of [...this.listeners]) listener(message);
    }
}
