/**
 * The express apps, built from injected dependencies so that tests run the very same apps against
 * the real stack (or through proxies that stop), and server.ts only wires configuration:
 * - the public app: the Stripe webhook, users' own tenants, liveness; rate-limited per client
 *   address. It accepts no service token: a leaked one is worth nothing from outside.
 * - the admin app, on an internal port (and address) only: /metrics, /readyz, and everything
 *   that takes the service token: the tenant list, provision, deprovision, Stripe events and
 *   their reprocessing, the operator endpoints.
 */
import { randomUUID } from 'node:crypto';
import express, { type Express, type RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { PayloadCodec } from '@temporalio/common';
import type { Logger } from 'pino';
import type { Db } from '../db/client';
import type { PlanCatalogue } from '../plans';
import { adminRouter } from './admin';
import { createAuth, type AuthOptions } from './auth';
import { livenessRouter, readinessRouter } from './health';
import { eventsRouter } from './events';
import type { Metrics } from './metrics';
import { ADMIN_ROUTES, openApiDocument } from './openapi';
import { codecRouter } from './codec';
import { HttpProblem, errorHandler, notFoundHandler } from './problem';
import type { StripeReader } from './stripe-api';
import type { TenantWorkflows } from './temporal';
import { serviceTenantsRouter, userTenantsRouter } from './tenants';
import { webhookRouter, type WebhookOptions } from './webhook';

export interface ApiDeps {
  db: Db;
  workflows: TenantWorkflows;
  plans: PlanCatalogue;
  logger: Logger;
  metrics: Metrics;
  auth: AuthOptions;
  webhook: WebhookOptions;
  stripe: StripeReader;
  /** Called after a webhook decision queued dispatches (the outbox dispatcher's nudge). */
  onQueued?: () => void;
  statusQueryTimeoutMs: number;
  readyTimeoutMs: number;
  /** TEMPORAL_PAYLOAD_KEYS' codec, for POST /codec/decode on the admin port; unset: payloads pass as they are. */
  payloadCodec?: PayloadCodec;
  /** How long one round of readiness checks answers every /readyz caller (READY_CACHE_MS). */
  readyCacheMs?: number;
  /** True once shutdown has begun: /readyz answers 503 so that load balancers stop sending. */
  draining?: () => boolean;
  /** Requests per minute and client address; 0 turns a limit off. */
  rateLimit?: { apiPerMinute: number; webhookPerMinute: number };
  /** express's `trust proxy`: how many proxies in front may set X-Forwarded-For (the client address). */
  trustProxy?: number;
}

/** Per client address, in this process's memory: each replica counts on its own (documented). */
function limiter(perMinute: number, what: string): RequestHandler {
  if (perMinute <= 0) return (_req, _res, next) => next();
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    // The library has already set Retry-After and the RateLimit headers.
    handler: (_req, _res, next) => {
      next(new HttpProblem('rate-limited', `more than ${perMinute} ${what} requests a minute from this address; retry after the Retry-After delay`));
    },
  });
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

/** `/api/events/:eventId` → a RegExp matching its concrete paths. */
const routePattern = (path: string) => new RegExp(`^${path.replace(/:[A-Za-z0-9_]+/g, '[^/]+')}/?$`);
const ADMIN_ONLY = ADMIN_ROUTES.filter((r) => !['/healthz', '/openapi.json'].includes(r.path)).map((r) => ({ method: r.method.toUpperCase(), pattern: routePattern(r.path) }));

/** On the public port, a route of the admin port says where it is instead of a bare 404. */
function adminOnlyHint(req: { method: string; path: string }): string | undefined {
  return ADMIN_ONLY.some((r) => r.method === req.method && r.pattern.test(req.path))
    ? `${req.method} ${req.path} is served on the internal admin port only (ADMIN_PORT), never on the public port`
    : undefined;
}

/** What the webhook and the reprocessing of its events need: one decision path for both. */
function webhookDeps(deps: ApiDeps) {
  return { db: deps.db, stripe: deps.stripe, plans: deps.plans, logger: deps.logger, metrics: deps.metrics, options: deps.webhook, ...(deps.onQueued ? { onQueued: deps.onQueued } : {}) };
}

export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  if (deps.trustProxy) app.set('trust proxy', deps.trustProxy);

  app.use(requestLog(deps.logger));
  app.use(deps.metrics.middleware);
  const openapi = openApiDocument('public');
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  app.use(livenessRouter());
  // Liveness and the contract are not limited; the webhook and the API each have their own budget.
  app.use('/webhooks', limiter(deps.rateLimit?.webhookPerMinute ?? 0, 'webhook'));
  app.use('/api', limiter(deps.rateLimit?.apiPerMinute ?? 0, 'API'));
  // The webhook reads its own raw body (the signature covers the exact bytes): no JSON parser before it.
  const webhook = webhookDeps(deps);
  app.use(webhookRouter(webhook));
  const auth = createAuth(deps.auth);
  app.use(userTenantsRouter({ db: deps.db, workflows: deps.workflows, plans: deps.plans, auth, statusQueryTimeoutMs: deps.statusQueryTimeoutMs }));
  app.use(notFoundHandler(adminOnlyHint));
  app.use(errorHandler(deps.logger));
  return app;
}

/** The internal admin port: Prometheus metrics and every endpoint that takes the service token. */
export function createAdminApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(requestLog(deps.logger));
  const openapi = openApiDocument('admin');
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  app.use(livenessRouter());
  app.use(
    readinessRouter({
      db: deps.db,
      workflows: deps.workflows,
      logger: deps.logger,
      readyTimeoutMs: deps.readyTimeoutMs,
      cacheMs: deps.readyCacheMs ?? 1_000,
      draining: deps.draining ?? (() => false),
    }),
  );
  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  const auth = createAuth(deps.auth);
  const webhook = webhookDeps(deps);
  app.use(adminRouter({ db: deps.db, workflows: deps.workflows, plans: deps.plans, auth, statusQueryTimeoutMs: deps.statusQueryTimeoutMs }));
  app.use(eventsRouter({ db: deps.db, auth, stripe: deps.stripe, webhook }));
  app.use(codecRouter({ auth, codec: deps.payloadCodec }));
  app.use(
    serviceTenantsRouter({
      db: deps.db,
      workflows: deps.workflows,
      plans: deps.plans,
      auth,
      statusQueryTimeoutMs: deps.statusQueryTimeoutMs,
      ...(deps.onQueued ? { onQueued: deps.onQueued } : {}),
    }),
  );
  app.use(notFoundHandler());
  app.use(errorHandler(deps.logger));
  return app;
}
