/**
 * The `natsUrl` setting: NATS server URLs, comma-separated, with the broker's credentials in them
 * (`nats://broker-1:secret@10.0.0.5:4222`). nats.js takes credentials as options, not in its server URLs, and a log
 * line must never show a password: this splits them apart once.
 */
export interface NatsServers {
    /** Host and port of each server, without credentials. */
    servers: string[];
    user?: string;
    pass?: string;
    /** A URL with a user name and no password carries a token (`nats://s3cr3t@host:4222`). */
    token?: string;
    /** The setting as it may be logged: passwords and tokens replaced by `***`. */
    redacted: string;
}

export function parseNatsServers(natsUrl: string): NatsServers {
    const result: NatsServers = { servers: [], redacted: '' };
    const shown: string[] = [];
    for (const raw of natsUrl.split(',').map(server => server.trim()).filter(Boolean)) {
        const match = /^([a-z]+:\/\/)?(?:([^:@/]*)(?::([^@/]*))?@)?(.*)$/i.exec(raw)!;
        const [, scheme = '', user, password, rest] = match;
        result.servers.push(scheme + rest);
        if (user !== undefined && password !== undefined) {
            result.user ??= decodeURIComponent(user);
            result.pass ??= decodeURIComponent(password);
            shown.push(`${scheme}${user}:***@${rest}`);
        } else if (user) {
            result.token ??= decodeURIComponent(user);
            shown.push(`${scheme}***@${rest}`);
        } else {
            shown.push(scheme + rest);
        }
    }
    result.redacted = shown.join(',');
    return result;
}

/** Whether the setting carries credentials for NATS (a user and password, or a token). */
export function hasNatsCredentials(natsUrl: string): boolean {
    const parsed = parseNatsServers(natsUrl);
    return !!(parsed.user || parsed.token);
}

/**
 * The prefix of the reply subjects of a connection with NATS user `user`. With a prefix of its own, a broker's NATS
 * user may be allowed to subscribe to its own replies only (`_INBOX_<user>.>`), never to another broker's.
 */
export function inboxPrefixOf(user: string | undefined): string | undefined {
    return user ? `_INBOX_${user.replace(/[^A-Za-z0-9_-]/g, '_')}` : undefined;
}
