/**
 * GET /healthz (public and admin port): the process is up (no dependency is asked: a liveness
 * probe must not restart the API because PostgreSQL is down).
 * GET /readyz (admin port only): PostgreSQL answers `SELECT 1` within a short deadline; otherwise
 * 503 naming it. Also 503 while shutting down. Temporal (GetSystemInfo) is checked and reported,
 * but an unreachable Temporal only makes the answer `degraded` (200): the webhook commits to the
 * outbox and keeps accepting Stripe's deliveries while Temporal is away, so load balancers must
 * keep sending them. The checks' result is shared for `cacheMs` (READY_CACHE_MS), and callers
 * that arrive while a check runs wait for that one: a flood of probes costs one query and one
 * Temporal call a second, not one each.
 */
import express, { type Router } from 'express';
import type { Logger } from 'pino';
import type { Db } from '../db/client';
import { HttpProblem } from './problem';
import { withTimeout } from './store';
import type { TenantWorkflows } from './temporal';

export interface HealthDeps {
  db: Db;
  workflows: TenantWorkflows;
  logger: Logger;
  readyTimeoutMs: number;
  /** How long one round of checks answers every caller; 0: every caller runs its own. */
  cacheMs: number;
  draining: () => boolean;
}

interface Check {
  ok: boolean;
  latencyMs: number;
  error?: string;
}

export function livenessRouter(): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  return router;
}

export function readinessRouter(deps: HealthDeps): Router {
  const router = express.Router();

  async function check(name: string, fn: () => Promise<unknown>): Promise<Check> {
    const started = performance.now();
    try {
      await withTimeout(deps.readyTimeoutMs, name, fn);
      return { ok: true, latencyMs: Math.round(performance.now() - started) };
    } catch (err) {
      deps.logger.warn({ err, check: name }, 'readiness check failed');
      const timedOut = performance.now() - started >= deps.readyTimeoutMs;
      // The cause goes to the log only: it may name hosts and users.
      return { ok: false, latencyMs: Math.round(performance.now() - started), error: timedOut ? `no answer within ${deps.readyTimeoutMs} ms` : 'unreachable or failing' };
    }
  }

  type Checks = { postgres: Check; temporal: Check };
  // Shared while in flight, then for cacheMs after it finished. `check` never rejects.
  let shared: { until: number; round: Promise<Checks> } | undefined;
  function runChecks(): Promise<Checks> {
    if (shared && performance.now() < shared.until) return shared.round;
    const round = Promise.all([check('postgres', () => deps.db.$queryRaw`SELECT 1`), check('temporal', () => deps.workflows.ping(deps.readyTimeoutMs))]).then(([postgres, temporal]) => ({ postgres, temporal }));
    const entry = { until: Number.POSITIVE_INFINITY, round };
    shared = entry;
    void round.then(() => {
      entry.until = performance.now() + deps.cacheMs;
    });
    return round;
  }

  router.get('/readyz', async (_req, res) => {
    const checks = await runChecks();
    const { postgres, temporal } = checks;
    if (deps.draining()) throw new HttpProblem('not-ready', 'the service is shutting down', { checks, failed: ['shutdown'] });
    if (!postgres.ok) throw new HttpProblem('not-ready', 'not ready: postgres is unavailable', { checks, failed: ['postgres'] }, { 'Retry-After': '5' });
    if (!temporal.ok) {
      res.json({ status: 'degraded', checks, degraded: ['temporal'], detail: 'Temporal is unavailable: events are accepted and queued in the outbox until it is back' });
      return;
    }
    res.json({ status: 'ready', checks });
  });

  return router;
}
