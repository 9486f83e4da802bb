import { cli, Flag } from '@deepkit/app';
import { InjectorContext } from '@deepkit/injector';
import { Logger } from '@deepkit/logger';
import { BrokerConfig } from '../config';
import { AuditLog } from '../registry/audit-log';
import { AuditKind } from '../registry/entities';
import { PeerRegistry } from '../registry/peer-registry';
import { TokenDatabaseHandle } from '../runtime';
import { missingDatabase } from './command-line-checks';
import { formatAuditEvent, printable } from './printable';

/**
 * Read-only: a broker may be running on the same database, and it owns the rows. A database that does not exist is
 * not created (a command run in the wrong folder would leave an empty one there): the error says where it looked.
 */
async function openRegistry(injector: InjectorContext, database: string | undefined): Promise<PeerRegistry> {
    const config = injector.get(BrokerConfig);
    if (database !== undefined) config.database = database;
    const missing = missingDatabase(config.database);
    if (missing) throw new Error(missing);
    await injector.get(TokenDatabaseHandle).migrate();
    const registry = injector.get(PeerRegistry);
    await registry.open({ readOnly: true });
    return registry;
}

@cli.controller('peers', { description: 'List the peers in the registry (from the database; works while the broker runs).' })
export class PeersCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(
        /** @description only peers online when the broker last wrote the registry */
        online: boolean & Flag = false,
        /** @description SQLite file of registry and audit trail (default: SWITCHBOARD_DATABASE, else var/switchboard.sqlite) */
        database?: string & Flag,
    ): Promise<number> {
        const registry = await openRegistry(this.injector, database).catch((error: Error) => error);
        if (registry instanceof Error) {
            this.logger.error(registry.message);
            return 1;
        }
        const peers = registry.list(online ? { online: true } : {});
        if (!peers.length && online) {
            const registered = registry.list().length;
            this.logger.log(registered ? `No peer online (${registered} registered, all offline; see: peers).` : 'No peers registered yet.');
        } else if (!peers.length) this.logger.log('No peers registered yet.');
        for (const peer of peers) {
            this.logger.log(`${peer.online ? 'online ' : 'offline'}  ${printable(peer.id)}  last seen ${peer.lastSeen.toISOString()}  [${peer.capabilities.map(printable).join(', ')}]`);
        }
        return 0;
    }
}

@cli.controller('audit', { description: 'Show the audit trail, oldest first.' })
export class AuditCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(
        /** @description only events by or aimed at this peer */
        peer?: string & Flag,
        /** @description register, takeover, deregister, denied, call, disconnect or auth-failed */
        kind?: AuditKind & Flag,
        /** @description how many of the newest events */
        limit: number & Flag = 50,
        /** @description SQLite file of registry and audit trail (default: SWITCHBOARD_DATABASE, else var/switchboard.sqlite) */
        database?: string & Flag,
        /** @description read the whole cluster's trail from NATS (default: SWITCHBOARD_NATS_URL; rows of every broker) */
        natsUrl?: string & Flag,
        /** @description cluster name, with natsUrl (default: SWITCHBOARD_CLUSTER, else switchboard) */
        cluster?: string & Flag,
    ): Promise<number> {
        const config = this.injector.get(BrokerConfig);
        const url = natsUrl ?? config.natsUrl;
        if (url) {
            try {
                for (const event of await clusterAudit().readClusterTrail(url, cluster ?? config.cluster, { peerId: peer, kind, limit })) this.logger.log(formatAuditEvent(event));
                return 0;
            } catch (error) {
                this.logger.error((error as Error).message);
                return 1;
            }
        }
        const opened = await openRegistry(this.injector, database).then(() => undefined, (error: Error) => error);
        if (opened) {
            this.logger.error(opened.message);
            return 1;
        }
        for (const event of await this.injector.get(AuditLog).query({ peerId: peer, kind, limit })) {
            this.logger.log(formatAuditEvent(event));
        }
        return 0;
    }
}

/** The cluster's audit reader, required by `audit --natsUrl` alone: the other commands never load the NATS client. */
function clusterAudit(): typeof import('../cluster/cluster-audit') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../cluster/cluster-audit');
}
