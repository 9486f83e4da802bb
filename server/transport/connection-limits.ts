/** What `ConnectionLimits.admit` decides: a slot to give back when the socket closes, or why there is none. */
export type Admission = { admitted: true, release(): void } | { admitted: false, reason: string };

/**
 * Counts open WebSockets per client address and in total, so one host cannot hold thousands of sockets (each costs
 * memory and a file descriptor). IPv6 clients are counted per /64: a single host is usually given a whole /64, and
 * counting each address alone would let it open as many sockets as it likes.
 */
export class ConnectionLimits {
    protected perAddress = new Map<string, number>();
    protected total = 0;

    /** @param maxPerAddress 0: no limit per address. @param maxTotal 0: no limit in total. */
    constructor(protected maxPerAddress: number, protected maxTotal: number) {
    }

    admit(address: string): Admission {
        const group = addressGroup(address);
        const count = this.perAddress.get(group) ?? 0;
        if (this.maxPerAddress && count >= this.maxPerAddress) {
            return { admitted: false, reason: `too many connections from your address (limit ${this.maxPerAddress}); close some and retry` };
        }
        if (this.maxTotal && this.total >= this.maxTotal) {
            return { admitted: false, reason: `the broker is at its connection limit (${this.maxTotal}); retry later` };
        }
        this.perAddress.set(group, count + 1);
        this.total++;
        let released = false;
        return {
            admitted: true,
            release: () => {
                if (released) return;
                released = true;
                this.total--;
                const left = (this.perAddress.get(group) ?? 1) - 1;
                if (left > 0) this.perAddress.set(group, left);
                else this.perAddress.delete(group);
            },
        };
    }
}

/** The key a client address is counted under: IPv4 as is (also when IPv4-mapped), IPv6 by its /64 prefix. */
export function addressGroup(address: string): string {
    if (address.startsWith('::ffff:') && address.includes('.')) return address.slice('::ffff:'.length);
    if (!address.includes(':')) return address;
    const withoutZone = address.split('%')[0];
    const [head, tail] = withoutZone.split('::');
    const headGroups = head ? head.split(':') : [];
    const tailGroups = tail ? tail.split(':') : [];
    const zeros = tail === undefined ? [] : new Array(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0');
    const groups = [...headGroups, ...zeros, ...tailGroups].slice(0, 4);
    return groups.map(group => (parseInt(group, 16) || 0).toString(16)).join(':') + '::/64';
}
