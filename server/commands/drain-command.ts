import { cli, Flag } from '@deepkit/app';
import { Logger } from '@deepkit/logger';
import { BrokerConfig } from '../config';

@cli.controller('drain', { description: 'Drain a running broker: its peers move to another broker, in-flight calls finish, then it stops (as on SIGTERM).' })
export class DrainCommand {
    constructor(protected config: BrokerConfig, protected logger: Logger) {
    }

    async execute(
        /** @description the broker's HTTP address (default: http://127.0.0.1:<port>, the port from SWITCHBOARD_PORT) */
        url?: string & Flag,
        /** @description an admin token (token mode); open mode accepts a drain only from the broker's own machine */
        admin?: string & Flag,
    ): Promise<number> {
        const base = (url ?? `http://127.0.0.1:${this.config.port}`).replace(/^ws/, 'http').replace(/\/+$/, '');
        let response: Response;
        try {
            response = await fetch(`${base}/admin/drain`, {
                method: 'POST',
                headers: admin ? { authorization: `Bearer ${admin}` } : {},
                signal: AbortSignal.timeout(30_000),
            });
        } catch (error) {
            this.logger.error(`No broker answered at ${base} (${(error as Error).message}). Give its address with --url.`);
            return 1;
        }
        const body = await response.json().catch(() => ({})) as { message?: string, timeoutMs?: number, already?: boolean };
        if (response.status !== 202) {
            this.logger.error(`The broker at ${base} refused to drain (${response.status}): ${body.message ?? response.statusText}`);
            return 1;
        }
        this.logger.log(`The broker at ${base} is ${body.already ? 'already ' : ''}draining: its peers move to another broker; it stops once they are gone, at most in ${body.timeoutMs} ms.`);
        return 0;
    }
}
