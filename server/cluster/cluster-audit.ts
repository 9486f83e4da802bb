import { jetstreamManager, JetStreamManager, RetentionPolicy, DiscardPolicy, StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { AuditEvent, AuditKind } from '../registry/entities';
import { ClusterNames } from './cluster-names';
import { NatsLink } from './nats-link';

/**
 * The audit trail of a whole cluster: each broker keeps its own trail in SQLite, and also publishes every row to the
 * cluster's audit stream (JetStream, `<bucket>_audit`, one subject per broker), so `switchboard audit` with a NATS URL
 * reads the rows of every broker in one place, each naming its broker. The stream keeps rows for a week and at most
 * 256 MiB (oldest dropped first): the cluster's recent history, while each broker's SQLite keeps its own for longer.
 * A row decided while NATS is out of reach is in its broker's SQLite only.
 */
export const AUDIT_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
export const AUDIT_MAX_BYTES = 256 * 1024 * 1024;

/** The stream, created if absent (by every broker at start: the first creates it, the others find it). */
export async function ensureAuditStream(nc: NatsConnection, names: ClusterNames): Promise<void> {
    const manager = await jetstreamManager(nc);
    const name = names.auditStream;
    const info = await manager.streams.info(name).catch(() => undefined);
    if (info) return;
    await manager.streams.add({
        name, subjects: [`${names.prefix}.audit.*`], retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old,
        storage: StorageType.File, max_age: AUDIT_MAX_AGE_MS * 1_000_000, max_bytes: AUDIT_MAX_BYTES,
    });
}

/** One row as it travels: AuditEvent's fields, dates as ISO strings. */
export interface ClusterAuditRow {
    kind: string;
    at: string;
    brokerId: string;
    peerId?: string;
    target?: string;
    controller?: string;
    action?: string;
    reason?: string;
    session?: string;
    count?: number;
    lastAt?: string;
}

export interface ClusterAuditQuery {
    peerId?: string;
    kind?: string;
    limit?: number;
}

/** Rows read at most per query, newest first, whatever the filters: a query costs a bounded number of reads. */
const MAX_SCANNED = 5_000;
const decoder = new TextDecoder();

/** The newest rows of the cluster's audit stream that match, oldest first. */
export async function readClusterAudit(nc: NatsConnection, names: ClusterNames, query: ClusterAuditQuery = {}): Promise<ClusterAuditRow[]> {
    const manager: JetStreamManager = await jetstreamManager(nc);
    const name = names.auditStream;
    const info = await manager.streams.info(name).catch(() => undefined);
    if (!info || info.state.messages === 0) return [];
    const limit = query.limit ?? 100;
    const rows: ClusterAuditRow[] = [];
    const first = Math.max(info.state.first_seq, info.state.last_seq - MAX_SCANNED + 1);
    for (let seq = info.state.last_seq; seq >= first && rows.length < limit; seq--) {
        const message = await manager.streams.getMessage(name, { seq }).catch(() => null);
        if (!message) continue;
        let row: ClusterAuditRow;
        try {
            row = JSON.parse(decoder.decode(message.data)) as ClusterAuditRow;
        } catch {
            continue;
        }
        if (query.kind && row.kind !== query.kind) continue;
        if (query.peerId && row.peerId !== query.peerId && row.target !== query.peerId) continue;
        rows.push(row);
    }
    return rows.reverse();
}

/** `switchboard audit --natsUrl …`: the cluster's newest rows, as audit events (oldest first). */
export async function readClusterTrail(natsUrl: string, cluster: string, query: ClusterAuditQuery): Promise<AuditEvent[]> {
    const link = new NatsLink(natsUrl, `switchboard ${cluster} audit`, 500);
    await link.open();
    try {
        return (await readClusterAudit(link.nc, new ClusterNames(cluster), query)).map(row => {
            const event = new AuditEvent(row.kind as AuditKind);
            Object.assign(event, { peerId: row.peerId, target: row.target, controller: row.controller, action: row.action, reason: row.reason, session: row.session ?? '', count: row.count ?? 1, brokerId: row.brokerId });
            event.at = new Date(row.at);
            if (row.lastAt) event.lastAt = new Date(row.lastAt);
            return event;
        });
    } finally {
        await link.close();
    }
}
