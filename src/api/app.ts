/**
 * The express app, built from injected dependencies so that tests run the very same app against
 * the real stack (or through proxies that stop), and server.ts only wires configuration.
 */
import { randomUUID } from 'node:crypto';
import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Db } from '../db/client';
import type { PlanCatalogue } from '../plans';
import { createAuth, type AuthOptions } from './auth';
import { healthRouter } from './health';
import type { Metrics } from './metrics';
import { errorHandler, notFoundHandler } from './problem';
import type { TenantWorkflows } from './temporal';
import { tenantsRouter } from './tenants';
import { webhookRouter, type WebhookOptions } from './webhook';

export interface ApiDeps {
  db: Db;
  workflows: TenantWorkflows;
  plans: PlanCatalogue;
  logger: Logger;
  metrics: Metrics;
  auth: AuthOptions;
  webhook: WebhookOptions;
  statusQueryTimeoutMs: number;
  readyTimeoutMs: number;
  /** True once shutdown has begun: /readyz answers 503 so that load balancers stop sending. */
  draining?: () => boolean;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,100}$/;

/** Request id (the caller's X-Request-Id when sane) and one log line per request: no headers, no bodies. */
function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const given = req.get('x-request-id');
    const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    const started = performance.now();
    res.on('finish', () => {
      const route = req.route ? String((req.route as { path: unknown }).path) : undefined;
      const level = res.statusCode >= 500 ? 'warn' : 'info';
      logger[level]({ requestId, method: req.method, route, status: res.statusCode, durationMs: Math.round(performance.now() - started) }, 'request');
    });
    next();
  };
}

export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use(requestLog(deps.logger));
  app.use(deps.metrics.middleware);
  app.use(
    healthRouter({
      db: deps.db,
      workflows: deps.workflows,
      metrics: deps.metrics,
      logger: deps.logger,
      readyTimeoutMs: deps.readyTimeoutMs,
      draining: deps.draining ?? (() => false),
    }),
  );
  // The webhook reads its own raw body (the signature covers the exact bytes): no JSON parser before it.
  app.use(webhookRouter({ db: deps.db, workflows: deps.workflows, plans: deps.plans, logger: deps.logger, metrics: deps.metrics, options: deps.webhook }));
  app.use(
    tenantsRouter({
      db: deps.db,
      workflows: deps.workflows,
      plans: deps.plans,
      auth: createAuth(deps.auth),
      statusQueryTimeoutMs: deps.statusQueryTimeoutMs,
    }),
  );
  app.use(notFoundHandler());
  app.use(errorHandler(deps.logger));
  return app;
}
