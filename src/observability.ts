/**
 * What the worker tells operators about itself:
 * - the tenant id on every activity log line (the SDK's own lines for each attempt's start,
 *   completion and failure already carry workflow id, run id, activity type, attempt, duration),
 *   and one info line per completed step, visible at the default level;
 * - business metrics (provisions started, succeeded and failed; step durations and failures),
 *   prefixed `tenant_provisioner_`, next to the SDK's own `temporal_` metrics;
 * - a small health port: /healthz (liveness: the worker has not failed), /readyz (it polls), and
 *   /metrics (the business metrics), for the chart's probes and Prometheus.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory, State as WorkerState } from '@temporalio/worker';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { METRIC_PREFIX } from './api/metrics';
import { tenantIdOfWorkflowId } from './naming';

export interface WorkerMetrics {
  registry: Registry;
  provisionsStarted: Counter<'plan'>;
  provisionsSucceeded: Counter;
  provisionsFailed: Counter;
  stepDuration: Histogram<'step' | 'outcome'>;
  stepFailures: Counter<'step' | 'type'>;
}

export function createWorkerMetrics(options: { defaultMetrics?: boolean } = {}): WorkerMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: `${METRIC_PREFIX}worker_` });
  const registers = [registry];
  return {
    registry,
    provisionsStarted: new Counter({ name: `${METRIC_PREFIX}provisions_started_total`, help: 'Provisioning runs whose tenant row was recorded, by plan', labelNames: ['plan'] as const, registers }),
    provisionsSucceeded: new Counter({ name: `${METRIC_PREFIX}provisions_succeeded_total`, help: 'Provisioning runs that reached active', registers }),
    provisionsFailed: new Counter({ name: `${METRIC_PREFIX}provisions_failed_total`, help: 'Provisioning runs that failed for good (everything undone, tenant marked failed)', registers }),
    stepDuration: new Histogram({
      name: `${METRIC_PREFIX}step_duration_seconds`,
      help: 'Duration of each activity attempt (provisioning, lifecycle and compensation steps), by outcome',
      labelNames: ['step', 'outcome'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    }),
    stepFailures: new Counter({ name: `${METRIC_PREFIX}step_failures_total`, help: 'Failed activity attempts, by step and error type (retried or final)', labelNames: ['step', 'type'] as const, registers }),
  };
}

const firstArg = (args: unknown[]): Record<string, unknown> => (args[0] && typeof args[0] === 'object' ? (args[0] as Record<string, unknown>) : {});

/**
 * Activity interceptors: the tenant id on every activity log line, and the business metrics.
 * Arguments and results are never logged (they may be large, and a future activity could carry
 * something sensitive); only ids, step names and durations.
 */
export function activityObservability(metrics: WorkerMetrics): ActivityInterceptorsFactory {
  return (ctx) => {
    let tenantId: string | undefined = tenantIdOfWorkflowId(ctx.info.workflowExecution?.workflowId);
    return {
      inbound: {
        async execute(input, next) {
          const arg = firstArg(input.args);
          if (typeof arg.tenantId === 'string') tenantId = arg.tenantId;
          const step = ctx.info.activityType;
          const started = performance.now();
          try {
            const result = await next(input);
            const seconds = (performance.now() - started) / 1000;
            metrics.stepDuration.observe({ step, outcome: 'succeeded' }, seconds);
            if (step === 'recordTenant') metrics.provisionsStarted.inc({ plan: typeof arg.plan === 'string' ? arg.plan : 'unknown' });
            if (step === 'setTenantStatus' && arg.status === 'active' && arg.step === 'markActive') metrics.provisionsSucceeded.inc();
            if (step === 'setTenantStatus' && arg.status === 'failed') metrics.provisionsFailed.inc();
            // At the default level the SDK's own per-attempt lines (debug) are hidden: one line per step done.
            ctx.log.info('step completed', { step, durationMs: Math.round(seconds * 1000) });
            return result;
          } catch (err) {
            const seconds = (performance.now() - started) / 1000;
            const type = err instanceof ApplicationFailure ? (err.type ?? 'ApplicationFailure') : err instanceof Error ? err.name : 'unknown';
            metrics.stepDuration.observe({ step, outcome: 'failed' }, seconds);
            metrics.stepFailures.inc({ step, type });
            throw err;
          }
        },
      },
      outbound: {
        getLogAttributes(attrs, next) {
          return next(tenantId ? { ...attrs, tenantId } : attrs);
        },
      },
    };
  };
}

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

/**
 * The worker's health port. Liveness fails once the worker has failed or stopped (the process is
 * of no use and should be restarted); readiness needs it to be polling.
 */
export async function startHealthServer(bind: string, state: () => WorkerState | undefined, metrics: WorkerMetrics): Promise<HealthServer> {
  const idx = bind.lastIndexOf(':');
  const host = bind.slice(0, idx);
  const port = Number(bind.slice(idx + 1));
  const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    const s = state() ?? 'STARTING';
    const reply = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') return reply(405, JSON.stringify({ error: 'GET only' }));
    if (path === '/healthz') {
      const alive = s !== 'FAILED' && s !== 'STOPPED';
      return reply(alive ? 200 : 503, JSON.stringify({ status: alive ? 'ok' : 'failed', worker: s }));
    }
    if (path === '/readyz') {
      const ready = s === 'RUNNING';
      return reply(ready ? 200 : 503, JSON.stringify({ status: ready ? 'ready' : 'not-ready', worker: s }));
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => reply(200, text, metrics.registry.contentType),
        () => reply(500, JSON.stringify({ error: 'metrics unavailable' })),
      );
      return;
    }
    reply(404, JSON.stringify({ error: 'not found' }));
  });
  server.listen(port, host);
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
