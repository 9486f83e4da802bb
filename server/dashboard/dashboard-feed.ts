import { interval, Observable, Subscription } from 'rxjs';
import { bufferTime, filter } from 'rxjs/operators';
import { AuditRecord, BrokerActivity, DashboardEvent } from '../../shared/dashboard';
import { AuditLog } from '../registry/audit-log';
import { AuditEvent } from '../registry/entities';
import { PeerRegistry } from '../registry/peer-registry';
import { BrokerStats } from '../stats';

const ACTIVITY_EVERY_MS = 1000;
/**
 * Presence changes and audit decisions are sent in batches: a busy broker registers hundreds of peers and decides
 * thousands of calls a second; a page redraws a few times a second and a person reads a few lines.
 */
const BATCH_MS = 250;
const AUDIT_BATCH_MAX = 25;

/** Builds the dashboard stream (`BrokerApi.dashboard()`): pushed by the broker, never polled by the page. */
export class DashboardFeed {
    constructor(
        protected registry: PeerRegistry,
        protected stats: BrokerStats,
        protected audit: AuditLog,
    ) {
    }

    stream(): Observable<DashboardEvent> {
        return new Observable<DashboardEvent>(subscriber => {
            let last = { at: performance.now(), calls: this.stats.callsRouted, bytes: this.stats.bytesRouted };
            const activity = (): BrokerActivity => {
                const now = { at: performance.now(), calls: this.stats.callsRouted, bytes: this.stats.bytesRouted };
                const seconds = Math.max(0.001, (now.at - last.at) / 1000);
                const result = this.activity();
                result.callsPerSecond = Math.round((now.calls - last.calls) / seconds);
                result.bytesPerSecond = Math.round((now.bytes - last.bytes) / seconds);
                last = now;
                return result;
            };

            const subscriptions = new Subscription();
            subscriptions.add(this.registry.presence.pipe(bufferTime(BATCH_MS), filter(batch => batch.length > 0)).subscribe(batch => {
                const changed = [...new Set(batch.map(event => event.peerId))].map(id => this.registry.info(id)).filter(info => !!info);
                subscriber.next(new DashboardEvent('peer', changed));
            }));
            subscriptions.add(this.audit.recorded.pipe(bufferTime(BATCH_MS), filter(batch => batch.length > 0)).subscribe(batch => {
                subscriber.next(new DashboardEvent('audit', [], undefined, batch.slice(-AUDIT_BATCH_MAX).map(toRecord)));
            }));
            subscriptions.add(interval(ACTIVITY_EVERY_MS).subscribe(() => subscriber.next(new DashboardEvent('activity', [], activity()))));
            subscriber.next(new DashboardEvent('snapshot', this.registry.list(), this.activity(), this.audit.recent().map(toRecord)));
            return () => subscriptions.unsubscribe();
        });
    }

    protected activity(): BrokerActivity {
        const activity = new BrokerActivity();
        activity.uptimeSeconds = Math.round((Date.now() - this.stats.startedAt.getTime()) / 1000);
        activity.peersOnline = this.registry.countOnline();
        activity.peersKnown = this.registry.countKnown();
        activity.callsRouted = this.stats.callsRouted;
        activity.bytesRouted = this.stats.bytesRouted;
        activity.refusals = { ...this.stats.refusals };
        activity.transfers = [...this.stats.transfers.values()].map(({ to, from, since }) => ({ to, from, since }));
        return activity;
    }
}

function toRecord(event: AuditEvent): AuditRecord {
    const action = event.controller && event.action ? `${event.controller}.${event.action}` : undefined;
    return new AuditRecord(event.at, event.kind, event.peerId, event.target, action, event.reason);
}
