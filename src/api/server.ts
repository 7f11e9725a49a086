/**
 * API process: reads its configuration from the environment (src/api/config.ts), serves the app,
 * and shuts down gracefully on SIGTERM/SIGINT (readiness goes 503, in-flight requests finish,
 * then the Temporal connection and the database pool close).
 *
 *   node dist/api/server.js
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import pino, { type Logger } from 'pino';
import { createDb, type Db } from '../db/client';
import { loadPlanCatalogue, type PlanCatalogue } from '../plans';
import { createApp, type ApiDeps } from './app';
import { loadApiConfig, type ApiConfig } from './config';
import { createMetrics } from './metrics';
import { withTimeout } from './store';
import { createTenantWorkflows } from './temporal';

export interface ApiRuntime {
  deps: ApiDeps;
  db: Db;
  connection: Connection;
  plans: PlanCatalogue;
  /** Closes the Temporal connection and the database pool. */
  close(): Promise<void>;
}

export function createLogger(level: ApiConfig['LOG_LEVEL']): Logger {
  return pino({
    level,
    base: { service: 'tenant-provisioner-api' },
    // Belt and braces: the code never logs headers or bodies, and these paths are masked if one slips in.
    redact: {
      paths: ['authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', '*.headers["stripe-signature"]', 'token', '*.token', 'secret', '*.secret', 'password', '*.password'],
      censor: '[redacted]',
    },
  });
}

/** Everything the app needs, from a validated configuration. Nothing here waits for a server to answer. */
export function createApiRuntime(config: ApiConfig, logger: Logger = createLogger(config.LOG_LEVEL)): ApiRuntime {
  const plans = loadPlanCatalogue(config.PLANS_JSON);
  const db = createDb(config.DATABASE_URL, { maxConnections: config.DB_POOL_SIZE });
  // Lazy: the API starts (and reports not ready) while Temporal is unreachable; gRPC reconnects.
  const connection = Connection.lazy({ address: config.TEMPORAL_ADDRESS, connectTimeout: `${config.TEMPORAL_TIMEOUT_MS}ms` });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const workflows = createTenantWorkflows({ client, connection, taskQueue: config.TASK_QUEUE, timeoutMs: config.TEMPORAL_TIMEOUT_MS });
  const metrics = createMetrics({
    tenantCounts: async () => {
      const groups = await withTimeout(1_000, 'tenant counts', () => db.tenant.groupBy({ by: ['status'], _count: { _all: true } }));
      return Object.fromEntries(groups.map((g) => [g.status, g._count._all]));
    },
  });
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
      serviceToken: config.SERVICE_TOKEN,
    },
    webhook: {
      secret: config.STRIPE_WEBHOOK_SECRET,
      toleranceSeconds: config.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
      bodyLimit: config.WEBHOOK_BODY_LIMIT,
      graceSeconds: config.DEPROVISION_GRACE_SECONDS,
    },
    statusQueryTimeoutMs: config.STATUS_QUERY_TIMEOUT_MS,
    readyTimeoutMs: config.READY_TIMEOUT_MS,
  };
  return {
    deps,
    db,
    connection,
    plans,
    async close() {
      await Promise.allSettled([connection.close(), db.$disconnect()]);
    },
  };
}

/** An HTTP server with timeouts on every phase of a request (slow clients cannot hold sockets). */
export function createHttpServer(app: http.RequestListener): http.Server {
  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 15_000, keepAliveTimeout: 5_000, maxHeaderSize: 16 * 1024 }, app);
  return server;
}

async function main(): Promise<void> {
  const config = loadApiConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const runtime = createApiRuntime(config, logger);
  let draining = false;
  const app = createApp({ ...runtime.deps, draining: () => draining });
  const server = createHttpServer(app);
  server.listen(config.PORT, config.HOST);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  logger.info({ port, taskQueue: config.TASK_QUEUE, temporal: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE }, 'API listening');

  const shutdown = (signal: NodeJS.Signals) => {
    if (draining) return;
    draining = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => {
      logger.warn('shutdown timeout: closing remaining connections');
      server.closeAllConnections();
    }, config.SHUTDOWN_TIMEOUT_MS);
    force.unref();
    server.close((err) => {
      clearTimeout(force);
      runtime
        .close()
        .then(() => {
          logger.info('stopped');
          process.exit(err ? 1 : 0);
        })
        .catch(() => process.exit(1));
    });
    server.closeIdleConnections();
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
