/**
 * Prometheus metrics, on a registry of the app's own (several apps may live in one test process).
 * Label values come from closed sets (route patterns, not URLs; outcomes; tenant statuses), so a
 * client cannot grow the number of series. Every name starts with METRIC_PREFIX, so the service's
 * series never collide with another exporter's in a shared Prometheus.
 */
import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The prefix of every metric the API and the worker export (the SDK's own keep `temporal_`). */
export const METRIC_PREFIX = 'tenant_provisioner_';

export type WebhookOutcome = 'queued' | 'recorded' | 'ignored' | 'duplicate' | 'rejected' | 'unavailable' | 'error';

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  webhookEvents: Counter<'type' | 'outcome'>;
  /** Outbox rows delivered to Temporal, by dispatch. */
  outboxDelivered: Counter<'signal'>;
  /** Outbox rows given up after errors a retry cannot fix. */
  outboxFailed: Counter<'signal'>;
  retentionPruned: Counter<'table'>;
  /** Seconds from a decision's commit to Temporal accepting it. */
  outboxLag: Histogram;
  middleware: RequestHandler;
}

/** The outbox backlog, read at scrape time. */
export interface OutboxBacklog {
  pending: number;
  oldestAgeSeconds: number;
}

export interface MetricsOptions {
  /** Tenants by status, read when Prometheus scrapes; undefined keeps the previous values. */
  tenantCounts?: () => Promise<Record<string, number> | undefined>;
  /** Tenants with a failing lifecycle change, by condition type, read when Prometheus scrapes. */
  conditionCounts?: () => Promise<Record<string, number> | undefined>;
  /** Stripe events still `received` (never handed on) and the age of the oldest, read when Prometheus scrapes. */
  receivedEvents?: () => Promise<{ count: number; oldestAgeSeconds: number } | undefined>;
  /** Undelivered outbox rows and the age of the oldest, read at scrape time. */
  outboxBacklog?: () => Promise<OutboxBacklog | undefined>;
  defaultMetrics?: boolean;
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });

  const httpDuration = new Histogram({
    name: `${METRIC_PREFIX}http_request_duration_seconds`,
    help: 'HTTP request durations by route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const webhookEvents = new Counter({
    name: `${METRIC_PREFIX}webhook_events_total`,
    help: 'Stripe webhook deliveries by event type and outcome',
    labelNames: ['type', 'outcome'] as const,
    registers: [registry],
  });
  /**
   * Gauges read from PostgreSQL when Prometheus scrapes. A read that fails or has nothing to say
   * keeps the previous values; a labelled one is replaced whole, so a label gone from the
   * answer (a status no tenant has any more) goes from the output too.
   */
  const labelledScrapeGauge = (name: string, help: string, label: string, read?: () => Promise<Record<string, number> | undefined>) =>
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames: [label],
      registers: [registry],
      async collect() {
        const counts = read ? await read().catch(() => undefined) : undefined;
        if (!counts) return;
        this.reset();
        for (const [value, n] of Object.entries(counts)) this.set({ [label]: value }, n);
      },
    });
  const scrapeGauge = (name: string, help: string, read: () => Promise<number | undefined>) =>
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      registers: [registry],
      async collect() {
        const value = await read();
        if (value !== undefined) this.set(value);
      },
    });

  labelledScrapeGauge('tenants', 'Tenants by status (from PostgreSQL, read at scrape time)', 'status', options.tenantCounts);
  labelledScrapeGauge(
    'tenant_conditions',
    'Tenants whose lifecycle change keeps failing and is retried with backoff, by condition type (from PostgreSQL, read at scrape time)',
    'condition',
    options.conditionCounts,
  );

  const receivedEvents = options.receivedEvents;
  const readReceived = async () => (receivedEvents ? await receivedEvents().catch(() => undefined) : undefined);
  scrapeGauge(
    'stripe_events_received',
    'Stripe events recorded but not yet handed on (outcome received); they stay there through outages until redelivered or reprocessed',
    async () => (await readReceived())?.count,
  );
  scrapeGauge('stripe_events_received_oldest_age_seconds', 'Age of the oldest Stripe event still in outcome received (0 when none)', async () => (await readReceived())?.oldestAgeSeconds);

  const outboxDelivered = new Counter({
    name: `${METRIC_PREFIX}outbox_delivered_total`,
    help: 'Outbox rows delivered to Temporal, by dispatch (start or signal name)',
    labelNames: ['signal'] as const,
    registers: [registry],
  });
  const outboxFailed = new Counter({
    name: `${METRIC_PREFIX}outbox_failed_total`,
    help: 'Outbox rows given up after an error that retrying cannot fix (see outbox.last_error)',
    labelNames: ['signal'] as const,
    registers: [registry],
  });
  const retentionPruned = new Counter({
    name: `${METRIC_PREFIX}retention_pruned_rows_total`,
    help: 'Rows deleted by the retention job, by table (see RETENTION_* settings)',
    labelNames: ['table'] as const,
    registers: [registry],
  });
  const outboxLag = new Histogram({
    name: `${METRIC_PREFIX}outbox_lag_seconds`,
    help: 'Time from a webhook decision being committed to Temporal accepting its dispatch',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 1800],
    registers: [registry],
  });
  const outboxBacklog = options.outboxBacklog;
  const readBacklog = async () => (outboxBacklog ? await outboxBacklog().catch(() => undefined) : undefined);
  scrapeGauge(
    'outbox_pending',
    'Outbox rows not yet delivered to Temporal (a growing number means Temporal is not accepting them)',
    async () => (await readBacklog())?.pending,
  );
  scrapeGauge('outbox_oldest_age_seconds', 'Age of the oldest undelivered outbox row', async () => (await readBacklog())?.oldestAgeSeconds);

  const middleware: RequestHandler = (req, res, next) => {
    const end = httpDuration.startTimer({ method: req.method });
    res.on('finish', () => {
      // The matched pattern (e.g. /api/tenants/:tenantId), never the raw path.
      const route = req.route ? `${req.baseUrl}${String((req.route as { path: unknown }).path)}` : 'unmatched';
      end({ route, status_code: String(res.statusCode) });
    });
    next();
  };

  return { registry, httpDuration, webhookEvents, outboxDelivered, outboxFailed, retentionPruned, outboxLag, middleware };
}
