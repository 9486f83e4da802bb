import { cli, Flag } from '@deepkit/app';
import { InjectorContext } from '@deepkit/injector';
import { Logger } from '@deepkit/logger';
import { assertValidConfig, BrokerConfig } from '../config';
import { ClusterState } from '../cluster/cluster-state';
import { PeerTokenStore } from '../registry/token-store';
import { TokenDatabaseHandle } from '../runtime';
import { missingDatabase } from './command-line-checks';
import { printable } from './printable';

/** Where a token command finds the tokens: flags first, then the SWITCHBOARD_* variables. */
interface TokenStoreFlags {
    natsUrl?: string;
    cluster?: string;
    database?: string;
    tokenDatabase?: string;
    /** Only token:create may make a new database (it runs before the broker's first start). */
    mayCreate?: boolean;
}

/**
 * Runs `work` on the token store: the cluster's (JetStream KV) when a NATS URL is set, else the broker's SQLite.
 * Prints the reason and returns 1 when the store is out of reach.
 */
async function withTokens(injector: InjectorContext, logger: Logger, flags: TokenStoreFlags, work: (tokens: PeerTokenStore) => Promise<number>): Promise<number> {
    const config = injector.get(BrokerConfig);
    if (flags.natsUrl !== undefined) config.natsUrl = flags.natsUrl;
    if (flags.cluster !== undefined) config.cluster = flags.cluster;
    if (flags.database !== undefined) config.database = flags.database;
    if (flags.tokenDatabase !== undefined) config.tokenDatabase = flags.tokenDatabase;
    try {
        assertValidConfig(config);
        const missing = !config.natsUrl && !flags.mayCreate && missingDatabase(config.tokenDatabase || config.database);
        if (missing) throw new Error(missing);
        if (!config.natsUrl) await injector.get(TokenDatabaseHandle).migrate();
        return await work(injector.get<PeerTokenStore>());
    } catch (error) {
        logger.error((error as Error).message);
        return 1;
    } finally {
        // An open NATS connection would keep the command from exiting.
        await injector.get(ClusterState).close();
    }
}

@cli.controller('token:create', { description: 'Create a peer token for token mode; prints it once.' })
export class TokenCreateCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(
        /** @description a name for the token (shown in the audit trail) */
        name: string,
        // In a doc comment Deepkit cuts the text at its first `*`; the description is given in the type instead.
        peer: string[] & Flag<{ description: 'peer IDs it may register: exact, prefix* or *; repeat the flag for more' }> = [],
        /** @description if given, the only peers it may send to */
        allow: string[] & Flag = [],
        /** @description peers it may never send to */
        deny: string[] & Flag = [],
        /** @description may watch the whole broker */
        admin: boolean & Flag = false,
        /** @description NATS URLs of a cluster: its tokens are made there (default: SWITCHBOARD_NATS_URL; empty: the broker's SQLite) */
        natsUrl?: string & Flag,
        /** @description cluster name (default: SWITCHBOARD_CLUSTER, else switchboard) */
        cluster?: string & Flag,
        /** @description SQLite file of the broker (default: SWITCHBOARD_DATABASE, else var/switchboard.sqlite) */
        database?: string & Flag,
        /** @description SQLite file of peer tokens, if the broker keeps them apart (default: SWITCHBOARD_TOKEN_DATABASE) */
        tokenDatabase?: string & Flag,
    ): Promise<number> {
        return withTokens(this.injector, this.logger, { natsUrl, cluster, database, tokenDatabase, mayCreate: true }, async tokens => {
            const token = await tokens.create(name, { peerIds: peer, allowTargets: allow, denyTargets: deny, admin });
            this.logger.log(`Token "${name}" (peers: ${peer.join(', ') || 'none'}). Keep it; it is not shown again:`);
            process.stdout.write(token + '\n');
            return 0;
        });
    }
}

@cli.controller('token:revoke', { description: 'Revoke a peer token; new connections with it are refused.' })
export class TokenRevokeCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(
        name: string,
        /** @description NATS URLs of a cluster: revoke it there, on every broker (default: SWITCHBOARD_NATS_URL) */
        natsUrl?: string & Flag,
        /** @description cluster name (default: SWITCHBOARD_CLUSTER, else switchboard) */
        cluster?: string & Flag,
        /** @description SQLite file of the broker (default: SWITCHBOARD_DATABASE, else var/switchboard.sqlite) */
        database?: string & Flag,
        /** @description SQLite file of peer tokens, if the broker keeps them apart (default: SWITCHBOARD_TOKEN_DATABASE) */
        tokenDatabase?: string & Flag,
    ): Promise<number> {
        return withTokens(this.injector, this.logger, { natsUrl, cluster, database, tokenDatabase }, async tokens => {
            if (await tokens.revoke(name)) {
                this.logger.log(`Token "${name}" revoked.`);
                return 0;
            }
            this.logger.error(`No live token named "${name}". See token:list.`);
            return 1;
        });
    }
}

@cli.controller('token:list', { description: 'List peer tokens (names and grants, never the tokens).' })
export class TokenListCommand {
    constructor(protected injector: InjectorContext, protected logger: Logger) {
    }

    async execute(
        /** @description NATS URLs of a cluster: list its tokens (default: SWITCHBOARD_NATS_URL) */
        natsUrl?: string & Flag,
        /** @description cluster name (default: SWITCHBOARD_CLUSTER, else switchboard) */
        cluster?: string & Flag,
        /** @description SQLite file of the broker (default: SWITCHBOARD_DATABASE, else var/switchboard.sqlite) */
        database?: string & Flag,
        /** @description SQLite file of peer tokens, if the broker keeps them apart (default: SWITCHBOARD_TOKEN_DATABASE) */
        tokenDatabase?: string & Flag,
    ): Promise<number> {
        return withTokens(this.injector, this.logger, { natsUrl, cluster, database, tokenDatabase }, async tokens => {
            for (const token of await tokens.list()) {
                const state = token.revokedAt ? `revoked ${token.revokedAt.toISOString()}` : 'active';
                const list = (patterns: string[]) => patterns.map(printable).join(', ');
                this.logger.log(`${printable(token.name)}  ${state}  peers: ${list(token.peerIds)}  allow: ${list(token.allowTargets) || '*'}  deny: ${list(token.denyTargets) || '-'}${token.admin ? '  admin' : ''}`);
            }
            return 0;
        });
    }
}
