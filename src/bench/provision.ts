/**
 * Provisioning benchmark: how long a burst of signups takes on this cluster, end to end.
 *
 * Runs an in-process worker with the real activities on its own task queue, starts N tenants at
 * once, waits until each is `active`, then deprovisions them all, and prints latency percentiles,
 * throughput and the worker process's peak memory. Figures, not pass/fail: compare runs.
 *
 *   npm run bench -- --tenants 20 --plan starter --concurrency 20
 *
 * Uses the same environment as the worker (source .stack/env for the local stack).
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { V1Namespace } from '@kubernetes/client-node';
import { loadWorkerConfig } from '../config';
import { deprovisionSignal, statusQuery, tenantWorkflowId } from '../contract';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../k8s/labels';
import { activityDepsFromConfig, createWorker } from '../worker';
import type { provisionTenant } from '../workflows';

interface Sample {
  tenantId: string;
  activeMs?: number;
  goneMs?: number;
  error?: string;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(label: string, values: number[]): string {
  const s = [...values].sort((a, b) => a - b);
  const f = (ms: number) => `${(ms / 1000).toFixed(2)}s`;
  return `${label.padEnd(22)} n=${s.length}  p50=${f(percentile(s, 50))}  p95=${f(percentile(s, 95))}  max=${f(s[s.length - 1] ?? NaN)}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tenants: { type: 'string', default: '10' },
      plan: { type: 'string', default: 'starter' },
      concurrency: { type: 'string', default: '20' },
      'timeout-seconds': { type: 'string', default: '900' },
    },
  });
  const n = Number(values.tenants);
  const timeoutMs = Number(values['timeout-seconds']) * 1000;
  if (!Number.isInteger(n) || n < 1 || n > 500) throw new Error('--tenants must be an integer from 1 to 500');

  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = { ...loadWorkerConfig(), TASK_QUEUE: `bench-${randomUUID().slice(0, 8)}`, WORKER_MAX_ACTIVITIES: Number(values.concurrency) };
  const deps = activityDepsFromConfig(config);
  const { worker, connection: workerConnection } = await createWorker(config, deps);
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS, connectTimeout: '10s' });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });

  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 250);
  const samples: Sample[] = Array.from({ length: n }, () => ({ tenantId: randomUUID() }));
  const deadline = Date.now() + timeoutMs;

  const run = async () => {
    const started = Date.now();
    const handles = await Promise.all(
      samples.map((s) =>
        client.workflow.start<typeof provisionTenant>('provisionTenant', {
          taskQueue: config.TASK_QUEUE,
          workflowId: tenantWorkflowId(s.tenantId),
          args: [{ tenantId: s.tenantId, plan: values.plan }],
        }),
      ),
    );
    await Promise.all(
      handles.map(async (h, i) => {
        const s = samples[i]!;
        while (Date.now() < deadline) {
          const p = await h.query(statusQuery).catch(() => undefined);
          if (p?.status === 'active') {
            s.activeMs = Date.now() - started;
            return;
          }
          const desc = await h.describe();
          if (desc.status.name !== 'RUNNING') {
            s.error = await h.result().then(
              () => `workflow ${desc.status.name}`,
              (e: Error) => (e.cause instanceof Error ? e.cause.message : e.message),
            );
            return;
          }
          await new Promise((r) => setTimeout(r, 250));
        }
        s.error = 'timed out';
      }),
    );
    const provisionedIn = Date.now() - started;

    const teardownStart = Date.now();
    await Promise.all(
      handles.map(async (h, i) => {
        const s = samples[i]!;
        if (s.error) return;
        await h.signal(deprovisionSignal, { reason: 'benchmark' });
        await h.result().catch((e: Error) => (s.error = e.message));
        s.goneMs = Date.now() - teardownStart;
      }),
    );
    return { provisionedIn, deprovisionedIn: Date.now() - teardownStart };
  };

  try {
    const { provisionedIn, deprovisionedIn } = await worker.runUntil(run());
    const leaked = (await deps.kube.list<V1Namespace>('v1', 'Namespace', undefined, `${LABEL_MANAGED_BY}=${MANAGED_BY}`)).filter((ns) =>
      samples.some((s) => ns.metadata?.name?.endsWith(s.tenantId)),
    );
    const failed = samples.filter((s) => s.error);
    console.log(`tenants: ${n}, plan ${values.plan}, worker concurrency ${config.WORKER_MAX_ACTIVITIES}`);
    console.log(summary('time to active', samples.flatMap((s) => (s.activeMs === undefined ? [] : [s.activeMs]))));
    console.log(summary('time to deprovisioned', samples.flatMap((s) => (s.goneMs === undefined ? [] : [s.goneMs]))));
    console.log(`provisioning throughput  ${((n - failed.length) / (provisionedIn / 60_000)).toFixed(1)} tenants/min (all active after ${(provisionedIn / 1000).toFixed(1)}s)`);
    console.log(`teardown                 all gone after ${(deprovisionedIn / 1000).toFixed(1)}s`);
    console.log(`worker peak RSS          ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
    console.log(`failed ${failed.length}, leaked namespaces ${leaked.length}`);
    for (const f of failed) console.log(`  ${f.tenantId}: ${f.error}`);
    if (failed.length || leaked.length) process.exitCode = 1;
  } finally {
    clearInterval(sampler);
    await connection.close();
    await workerConnection.close();
    await deps.db.$disconnect();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
