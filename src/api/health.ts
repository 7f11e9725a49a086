/**
 * GET /healthz: the process is up (no dependency is asked: a liveness probe must not restart the
 * API because PostgreSQL is down).
 * GET /readyz: PostgreSQL answers `SELECT 1` and Temporal answers GetSystemInfo, each within a
 * short deadline; otherwise 503 naming what failed. Also 503 while shutting down.
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
  draining: () => boolean;
}

interface Check {
  ok: boolean;
  latencyMs: number;
  error?: string;
}

export function healthRouter(deps: HealthDeps): Router {
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

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const [postgres, temporal] = await Promise.all([
      check('postgres', () => deps.db.$queryRaw`SELECT 1`),
      check('temporal', () => deps.workflows.ping(deps.readyTimeoutMs)),
    ]);
    const checks = { postgres, temporal };
    const failed = Object.entries(checks).filter(([, c]) => !c.ok).map(([name]) => name);
    if (deps.draining()) throw new HttpProblem('not-ready', 'the service is shutting down', { checks, failed: ['shutdown'] });
    if (failed.length > 0) {
      throw new HttpProblem('not-ready', `not ready: ${failed.join(' and ')} ${failed.length > 1 ? 'are' : 'is'} unavailable`, { checks, failed }, { 'Retry-After': '5' });
    }
    res.json({ status: 'ready', checks });
  });

  return router;
}
