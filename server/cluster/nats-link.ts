import type { NatsConnection } from '@nats-io/nats-core';
import { Subject } from 'rxjs';
import { inboxPrefixOf, parseNatsServers } from './nats-servers';

export type LinkEvent = 'disconnected' | 'reconnected';

/** No NATS server of `natsUrl` answered when the broker started. */
export class NatsUnreachable extends Error {
    readonly code = 'NATS_UNREACHABLE';
}

/**
 * The broker's one connection to NATS, and whether it is up right now. The client reconnects forever; while it is
 * down, nothing may be published (the client would buffer it and deliver it late, after the callers gave up), so
 * publishers check `connected` first.
 */
export class NatsLink {
    protected connection?: NatsConnection;
    protected isConnected = false;
    protected closing = false;
    protected readonly eventSubject = new Subject<LinkEvent>();
    readonly events = this.eventSubject.asObservable();

    /** @param servers `nats://host:port` URLs, comma-separated */
    constructor(protected servers: string, protected name: string, protected reconnectWaitMs: number) {
    }

    get nc(): NatsConnection {
        if (!this.connection) throw new Error('NATS link is not open');
        return this.connection;
    }

    get connected(): boolean {
        return this.isConnected;
    }

    /** Largest message the NATS server accepts (its `max_payload`). */
    get maxPayload(): number {
        return this.connection?.info?.max_payload ?? 1024 * 1024;
    }

    /** The URLs as they may be logged (no passwords). */
    get redactedUrl(): string {
        return parseNatsServers(this.servers).redacted;
    }

    async open(): Promise<void> {
        const { servers, user, pass, token, redacted } = parseNatsServers(this.servers);
        try {
            // Required on first open, not imported: a broker without a cluster never loads the NATS client.
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const { connect } = require('@nats-io/transport-node') as typeof import('@nats-io/transport-node');
            this.connection = await connect({
                servers,
                user,
                pass,
                token,
                inboxPrefix: inboxPrefixOf(user),
                name: this.name,
                reconnect: true,
                maxReconnectAttempts: -1,
                reconnectTimeWait: this.reconnectWaitMs,
                reconnectJitter: Math.min(100, this.reconnectWaitMs),
                timeout: 5_000,
                pingInterval: 10_000,
                maxPingOut: 2,
            });
        } catch (error) {
            throw new NatsUnreachable(`Cannot reach NATS at ${redacted} (natsUrl, SWITCHBOARD_NATS_URL): ${(error as Error).message}. Start nats-server with JetStream (-js), or fix the URL and its credentials (nats://user:password@host:4222).`);
        }
        this.isConnected = true;
        void this.follow(this.nc);
    }

    async close(): Promise<void> {
        if (!this.connection || this.closing) return;
        this.closing = true;
        this.isConnected = false;
        await this.connection.close().catch(() => undefined);
        this.eventSubject.complete();
    }

    protected async follow(connection: NatsConnection): Promise<void> {
        for await (const status of connection.status()) {
            if (this.closing) return;
            if (status.type === 'disconnect' && this.isConnected) {
                this.isConnected = false;
                this.eventSubject.next('disconnected');
            } else if (status.type === 'reconnect' && !this.isConnected) {
                this.isConnected = true;
                this.eventSubject.next('reconnected');
            }
        }
    }
}
