import { concat, defer, interval, merge, Observable, of, OperatorFunction } from 'rxjs';
import { filter, map, share } from 'rxjs/operators';
import { AuditRecord, BrokerActivity, DashboardEvent, PeerInfo } from '@switchboard/protocol';
import { AuditLog } from '../registry/audit-log';
import { AuditEvent } from '../registry/entities';
import { PeerExchange } from '../exchange/peer-exchange';
import { PeerRegistry } from '../registry/peer-registry';
import { BrokerStats } from '../stats';

const ACTIVITY_EVERY_MS = 1000;
/** An idle broker's activity is sent this rarely, so the page's uptime stays roughly current. */
const IDLE_ACTIVITY_EVERY_MS = 10_000;
/**
 * Presence changes and audit decisions are sent in batches: a busy broker registers hundreds of peers and decides
 * thousands of calls a second; a page redraws a few times a second and a person reads a few lines.
 */
const BATCH_MS = 250;
const AUDIT_BATCH_MAX = 25;
/** A page shows a handful of transfers; a busy broker may route a thousand. */
const TRANSFERS_SHOWN = 100;

/**
 * Builds the dashboard stream (`BrokerApi.dashboard()`): pushed by the broker, never polled by the page.
 *
 * Every subscriber shares one pipeline: one activity timer and one batch per kind, however many pages watch. It runs
 * only while someone watches, and an idle broker (nothing changed) sends nothing but a rare activity update, so a
 * watching page costs next to nothing until there is something to show.
 */
export class DashboardFeed {
    protected readonly updates: Observable<DashboardEvent>;

    constructor(
        protected registry: PeerRegistry,
        protected stats: BrokerStats,
        protected audit: AuditLog,
        protected exchange: PeerExchange,
    ) {
        const peers = this.registry.presence.pipe(
            inBatches(BATCH_MS, (changed: Set<string>, event) => changed.add(event.peerId), () => new Set<string>()),
            map(changed => new DashboardEvent('peer', [...changed].map(id => this.registry.info(id)).filter(info => !!info).map(info => this.located(info)))),
        );
        const decisions = this.audit.recorded.pipe(
            inBatches(BATCH_MS, (batch: AuditEvent[], event) => {
                batch.push(event);
                if (batch.length > AUDIT_BATCH_MAX) batch.shift();
                return batch;
            }, () => []),
            map(batch => new DashboardEvent('audit', [], undefined, batch.map(toRecord))),
        );
        const activity = defer(() => {
            let last = { at: performance.now(), calls: this.stats.callsRouted, bytes: this.stats.bytesRouted };
            let lastSent = { key: '', at: performance.now() };
            // Trend samples go out with the next activity event; an idle broker's wait for it, up to IDLE_ACTIVITY_EVERY_MS.
            let trendSentUntil = this.stats.history.samples().pop()?.at;
            return interval(ACTIVITY_EVERY_MS).pipe(
                map(() => {
                    const now = { at: performance.now(), calls: this.stats.callsRouted, bytes: this.stats.bytesRouted };
                    const seconds = Math.max(0.001, (now.at - last.at) / 1000);
                    const result = this.activity();
                    result.callsPerSecond = Math.round((now.calls - last.calls) / seconds);
                    result.bytesPerSecond = Math.round((now.bytes - last.bytes) / seconds);
                    last = now;
                    return result;
                }),
                filter(result => {
                    const key = changeKey(result);
                    if (key === lastSent.key && performance.now() - lastSent.at < IDLE_ACTIVITY_EVERY_MS) return false;
                    lastSent = { key, at: performance.now() };
                    return true;
                }),
                map(result => {
                    const trend = this.stats.history.samples(trendSentUntil);
                    trendSentUntil = trend[trend.length - 1]?.at ?? trendSentUntil;
                    return new DashboardEvent('activity', [], result, [], trend);
                }),
            );
        });
        this.updates = merge(peers, decisions, activity).pipe(share());
    }

    stream(): Observable<DashboardEvent> {
        return concat(
            defer(() => of(new DashboardEvent('snapshot', this.registry.list().map(info => this.located(info)), this.activity(), this.audit.recent().map(toRecord), this.stats.history.samples()))),
            this.updates,
        );
    }

    /** The peer with the broker that holds it (in a cluster, one of several). */
    protected located(info: PeerInfo): PeerInfo {
        if (info.online) info.brokerId = this.exchange.lookup(info.id)?.brokerId;
        return info;
    }

    protected activity(): BrokerActivity {
        const activity = new BrokerActivity();
        activity.brokerId = this.exchange.brokerId;
        activity.brokers = this.exchange.brokers();
        activity.uptimeSeconds = Math.round((Date.now() - this.stats.startedAt.getTime()) / 1000);
        activity.peersOnline = this.registry.countOnline();
        activity.peersKnown = this.registry.countKnown();
        activity.callsRouted = this.stats.callsRouted;
        activity.bytesRouted = this.stats.bytesRouted;
        activity.refusals = { ...this.stats.refusals };
        activity.transfers = [];
        for (const { to, from, since, bytes } of this.stats.transfers.values()) {
            if (activity.transfers.length === TRANSFERS_SHOWN) break;
            activity.transfers.push({ to, from, since, bytes });
        }
        return activity;
    }
}

/** What a page would redraw: everything but the clock. */
function changeKey(activity: BrokerActivity): string {
    // A broker's lastSeen moves with every heartbeat: only what an operator acts on (alive, peers) counts as a change.
    const brokers = activity.brokers.map(broker => [broker.brokerId, broker.alive, broker.peers, broker.natsLink]);
    return JSON.stringify([brokers, activity.peersOnline, activity.peersKnown, activity.callsRouted, activity.bytesRouted,
        activity.callsPerSecond, activity.bytesPerSecond, activity.refusals, activity.transfers]);
}

/**
 * Collects values for `ms` after the first one, then emits the batch. Unlike `bufferTime`, no timer runs while
 * nothing happens.
 */
function inBatches<T, B>(ms: number, add: (batch: B, value: T) => B, empty: () => B): OperatorFunction<T, B> {
    return source => new Observable<B>(subscriber => {
        let batch: B | undefined;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const subscription = source.subscribe({
            next: value => {
                batch = add(batch ?? empty(), value);
                timer ??= setTimeout(() => {
                    const full = batch!;
                    batch = timer = undefined;
                    subscriber.next(full);
                }, ms);
            },
            error: error => subscriber.error(error),
            complete: () => subscriber.complete(),
        });
        return () => {
            clearTimeout(timer);
            subscription.unsubscribe();
        };
    });
}

function toRecord(event: AuditEvent): AuditRecord {
    const action = event.controller && event.action ? `${event.controller}.${event.action}` : undefined;
    return new AuditRecord(event.at, event.kind, event.peerId, event.target, action, event.reason);
}
