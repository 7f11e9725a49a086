/**
 * API process: reads its configuration from the environment (src/api/config.ts), serves the public
 * app on PORT and the admin app (/metrics, operator endpoints) on ADMIN_PORT, and drains on
 * SIGTERM/SIGINT: readiness turns 503 at once, the listeners keep serving for SHUTDOWN_DELAY_MS so
 * that load balancers notice, then they close, in-flight requests finish (at most
 * SHUTDOWN_TIMEOUT_MS), the outbox dispatcher (src/api/outbox.ts, run in this process) finishes
 * its round, the retention job (src/db/retention.ts) finishes a run in progress, and the Temporal connection and the database pool close.
 *
 *   node dist/api/server.js
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Connection } from '@temporalio/client';
import type { Logger } from 'pino';
import { createLogger as createServiceLogger } from '../logging';
import { createDb, poolOf, type Db } from '../db/client';
import { RETENTION_TABLES, createRetentionJob, type RetentionJob } from '../db/retention';
import { loadPlanCatalogue, type PlanCatalogue } from '../plans';
import { payloadCodec } from '../temporal/codec';
import { lazyTemporalClient } from '../temporal/connection';
import { createAdminApp, createApp, type ApiDeps } from './app';
import { loadApiConfig, stripeLivemode, type ApiConfig } from './config';
import { createMetrics, type Metrics } from './metrics';
import { createDispatcher, type Dispatcher } from './outbox';
import { withTimeout } from './store';
import { createStripeReader, unconfiguredStripe } from './stripe-api';
import { createTenantWorkflows } from './temporal';

export interface ApiRuntime {
  deps: ApiDeps;
  db: Db;
  connection: Connection;
  plans: PlanCatalogue;
  /** Delivers outbox rows to Temporal; `start()` it where this process should deliver (the API does). */
  dispatcher: Dispatcher;
  /** Prunes old rows every RETENTION_INTERVAL_SECONDS; `start()` it where the dispatcher runs. */
  retention: RetentionJob;
  /** Stops the dispatcher and the retention job, then closes the Temporal connection and the database pool. */
  close(): Promise<void>;
}

export function createLogger(level: ApiConfig['LOG_LEVEL']): Logger {
  return createServiceLogger({ service: 'tenant-provisioner-api', level });
}

/** Everything the app needs, from a validated configuration. Nothing here waits for a server to answer. */
export function createApiRuntime(config: ApiConfig, logger: Logger = createLogger(config.LOG_LEVEL)): ApiRuntime {
  const plans = loadPlanCatalogue(config.PLANS_JSON);
  const db = createDb(config.DATABASE_URL, { maxConnections: config.DB_POOL_SIZE });
  // Lazy: the API starts (and reports not ready) while Temporal is unreachable; gRPC reconnects.
  const { client, connection } = lazyTemporalClient(config, config.TEMPORAL_TIMEOUT_MS);
  const workflows = createTenantWorkflows({ client, connection, taskQueue: config.TASK_QUEUE, timeoutMs: config.TEMPORAL_TIMEOUT_MS });
  const metrics = createMetrics({
    tenantCounts: async () => {
      const groups = await withTimeout(1_000, 'tenant counts', () => db.tenant.groupBy({ by: ['status'], _count: { _all: true } }));
      return Object.fromEntries(groups.map((g) => [g.status, g._count._all]));
    },
    conditionCounts: async () => {
      const rows = await withTimeout(1_000, 'condition counts', () =>
        db.$queryRaw<{ condition: string; n: number }[]>`SELECT metadata->'condition'->>'type' AS condition, count(*)::int AS n FROM tenants WHERE metadata ? 'condition' AND jsonb_typeof(metadata->'condition') = 'object' GROUP BY 1`,
      );
      // The gauge always has a ChangeFailing series (0 when none), so alerts on it do not go absent.
      return { ChangeFailing: 0, ...Object.fromEntries(rows.map((r) => [r.condition ?? 'unknown', r.n])) };
    },
    receivedEvents: async () => {
      const [row] = await withTimeout(1_000, 'received events', () =>
        db.$queryRaw<{ n: number; age: number }[]>`SELECT count(*)::int AS n, coalesce(extract(epoch FROM now() - min(received_at)), 0)::float8 AS age FROM stripe_events WHERE outcome = 'received'`,
      );
      return row ? { count: row.n, oldestAgeSeconds: row.age } : undefined;
    },
    outboxBacklog: async () => {
      const where = { deliveredAt: null, failedAt: null };
      const [pending, oldest] = await withTimeout(1_000, 'outbox backlog', () =>
        Promise.all([db.outboxMessage.count({ where }), db.outboxMessage.findFirst({ where, orderBy: { id: 'asc' }, select: { createdAt: true } })]),
      );
      return { pending, oldestAgeSeconds: oldest ? (Date.now() - oldest.createdAt.getTime()) / 1000 : 0 };
    },
  });
  const stripe = config.STRIPE_API_KEY
    ? createStripeReader({
        apiKey: config.STRIPE_API_KEY,
        ...(config.STRIPE_API_BASE ? { apiBase: config.STRIPE_API_BASE } : {}),
        timeoutMs: config.STRIPE_TIMEOUT_MS,
        maxNetworkRetries: config.STRIPE_MAX_RETRIES,
      })
    : unconfiguredStripe;
  const dispatcher = createOutboxDispatcher(config, db, workflows, logger, metrics);
  const retention = createRetention(config, db, logger, metrics);
  const deps: ApiDeps = {
    db,
    workflows,
    plans,
    logger,
    metrics,
    auth: {
      jwtSecret: config.JWT_SECRET,
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      clockToleranceSeconds: config.JWT_CLOCK_TOLERANCE_SECONDS,
      maxAgeSeconds: config.JWT_MAX_AGE_SECONDS,
      serviceTokens: config.SERVICE_TOKEN,
    },
    webhook: {
      secrets: config.STRIPE_WEBHOOK_SECRET,
      toleranceSeconds: config.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
      bodyLimit: config.WEBHOOK_BODY_LIMIT,
      graceSeconds: config.DEPROVISION_GRACE_SECONDS,
      livemode: stripeLivemode(config),
      suspendStatuses: config.SUSPEND_ON_STATUSES,
      connectAccounts: config.STRIPE_CONNECT_ACCOUNTS,
    },
    stripe,
    onQueued: () => dispatcher.nudge(),
    statusQueryTimeoutMs: config.STATUS_QUERY_TIMEOUT_MS,
    readyTimeoutMs: config.READY_TIMEOUT_MS,
    readyCacheMs: config.READY_CACHE_MS,
    payloadCodec: payloadCodec(config),
    rateLimit: { apiPerMinute: config.RATE_LIMIT_PER_MINUTE, webhookPerMinute: config.RATE_LIMIT_WEBHOOK_PER_MINUTE },
    trustProxy: config.TRUST_PROXY,
  };
  return {
    deps,
    db,
    connection,
    plans,
    dispatcher,
    retention,
    async close() {
      await Promise.all([dispatcher.stop(), retention.stop()]);
      await Promise.allSettled([connection.close(), db.$disconnect()]);
    },
  };
}

function createOutboxDispatcher(config: ApiConfig, db: Db, workflows: ApiDeps['workflows'], logger: Logger, metrics: Metrics): Dispatcher {
  return createDispatcher({
    db,
    workflows,
    logger,
    pollMs: config.OUTBOX_POLL_MS,
    batchSize: 50,
    // Longer than a delivery can take (one Temporal call with its deadline), so a lease never
    // expires under a dispatcher that is still delivering.
    leaseMs: Math.max(30_000, config.TEMPORAL_TIMEOUT_MS * 3),
    maxBackoffMs: config.OUTBOX_MAX_BACKOFF_MS,
    maxAttempts: 10,
    onDelivered: (p, _result, lagMs) => {
      metrics.outboxDelivered.inc({ signal: `${p.op}:${p.signal}` });
      metrics.outboxLag.observe(lagMs / 1000);
    },
    onFailed: (p) => metrics.outboxFailed.inc({ signal: `${p.op}:${p.signal}` }),
  });
}

const DAY_MS = 86_400_000;

function createRetention(config: ApiConfig, db: Db, logger: Logger, metrics: Metrics): RetentionJob {
  return createRetentionJob({
    pool: poolOf(db),
    intervalMs: config.RETENTION_INTERVAL_SECONDS * 1000,
    policy: {
      eventsMaxAgeMs: config.RETENTION_EVENTS_DAYS * DAY_MS,
      outboxMaxAgeMs: config.RETENTION_OUTBOX_DAYS * DAY_MS,
      idempotencyMaxAgeMs: config.RETENTION_IDEMPOTENCY_HOURS * 3_600_000,
      stepsMaxAgeMs: config.RETENTION_STEPS_DAYS * DAY_MS,
      stepsKeepPerTenant: config.RETENTION_STEPS_KEEP,
      batchSize: 1_000,
      maxBatches: 20,
    },
    onRun: (result) => {
      if (!result.ran) return;
      for (const table of RETENTION_TABLES) if (result[table] > 0) metrics.retentionPruned.inc({ table }, result[table]);
      logger.info({ pruned: Object.fromEntries(RETENTION_TABLES.map((t) => [t, result[t]])) }, 'retention: pruned old rows');
    },
    // The next run retries; rows only wait longer.
    onError: (err) => logger.warn({ err }, 'retention run failed; the next run retries'),
  });
}

/** An HTTP server with timeouts on every phase of a request (slow clients cannot hold sockets). */
export function createHttpServer(app: http.RequestListener): http.Server {
  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 15_000, keepAliveTimeout: 5_000, maxHeaderSize: 16 * 1024 }, app);
  return server;
}

async function listen(server: http.Server, port: number, host: string): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Stops accepting, lets in-flight requests finish, and force-closes what is left after `timeoutMs`. */
export function closeServer(server: http.Server, timeoutMs: number, onForce: () => void = () => undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const force = setTimeout(() => {
      onForce();
      server.closeAllConnections();
    }, timeoutMs);
    force.unref();
    server.close((err) => {
      clearTimeout(force);
      if (err) reject(err);
      else resolve();
    });
    server.closeIdleConnections();
  });
}

export interface RunningServers {
  port: number;
  adminPort: number;
  /** Readiness 503 → delay → close listeners → close dependencies. Resolves when everything is closed. */
  drain(signal: string): Promise<void>;
  isDraining(): boolean;
}

/** Both listeners with graceful drain, from a configuration: what `main` runs (and the drain test). */
export async function startServers(config: ApiConfig, logger: Logger): Promise<RunningServers> {
  const runtime = createApiRuntime(config, logger);
  let draining: Promise<void> | undefined;
  const deps = { ...runtime.deps, draining: () => draining !== undefined };
  const server = createHttpServer(createApp(deps));
  const admin = createHttpServer(createAdminApp(deps));
  const port = await listen(server, config.PORT, config.HOST);
  const adminPort = await listen(admin, config.ADMIN_PORT, config.ADMIN_HOST);
  runtime.dispatcher.start();
  runtime.retention.start();
  logger.info({ port, adminPort, taskQueue: config.TASK_QUEUE, temporal: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE }, 'API listening');

  async function run(signal: string): Promise<void> {
    logger.info({ signal, delayMs: config.SHUTDOWN_DELAY_MS }, 'draining: readiness is 503; still serving until load balancers notice');
    await new Promise((r) => setTimeout(r, config.SHUTDOWN_DELAY_MS));
    logger.info('closing listeners: finishing in-flight requests');
    const onForce = () => logger.warn({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'shutdown timeout: closing remaining connections');
    try {
      await Promise.all([closeServer(server, config.SHUTDOWN_TIMEOUT_MS, onForce), closeServer(admin, config.SHUTDOWN_TIMEOUT_MS, onForce)]);
    } finally {
      await runtime.close();
    }
    logger.info('stopped');
  }

  return {
    port,
    adminPort,
    isDraining: () => draining !== undefined,
    drain(signal) {
      draining ??= run(signal);
      return draining;
    },
  };
}

async function main(): Promise<void> {
  const config = loadApiConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const servers = await startServers(config, logger);
  const shutdown = (signal: NodeJS.Signals) => {
    servers.drain(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    // Configuration errors name the variable; nothing else about the environment is printed.
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
