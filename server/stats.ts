/** Counters behind `/status`. Plain numbers: they are bumped on the routing hot path. */
export class BrokerStats {
    readonly startedAt = new Date;
    callsRouted = 0;
    framesRouted = 0;
    bytesRouted = 0;
    denials = 0;
    readonly refusals: Record<string, number> = {};

    refused(code: string): void {
        this.denials++;
        this.refusals[code] = (this.refusals[code] ?? 0) + 1;
    }
}
