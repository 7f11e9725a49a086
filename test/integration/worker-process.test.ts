/**
 * The worker as the image runs it: `node dist/worker.js` with the workflow bundle built ahead of
 * time, real activities, JSON logs through pino (Temporal's Runtime logger bridged in, LOG_LEVEL
 * honoured, tenant/workflow/run ids on activity lines, no secrets), the health port and its
 * business metrics, and a clean stop on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { deprovisionSignal, tenantWorkflowId } from '../../src/contract';
import type { provisionTenant } from '../../src/workflows';
import { WORKFLOW_BUNDLE, buildDist, buildWorkflowBundle } from './build-dist';
import { ROOT, env, eventually, newTenantId, uniqueTaskQueue, useTemporalClient } from './helpers';

const DIST = path.join(ROOT, 'dist');

describe('the worker process', () => {
  const temporal = useTemporalClient();
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('provisions with a prebuilt bundle, logs structured JSON with ids, serves health and metrics, and stops on SIGTERM', async () => {
    await buildDist();
    await buildWorkflowBundle();

    const taskQueue = uniqueTaskQueue('worker-proc');
    const dbPassword = `pw${randomBytes(8).toString('hex')}`;
    const dbUrl = new URL(env('DATABASE_URL'));
    // The local PostgreSQL trusts local connections, so a password in the URL is accepted and unused:
    // it lets the test check that the URL's credentials never reach a log line.
    dbUrl.password = dbPassword;
    child = spawn(process.execPath, [path.join(DIST, 'worker.js')], {
      env: {
        PATH: process.env.PATH,
        // helm keeps its cache and config under HOME, as the chart's HOME=/tmp does.
        HOME: os.tmpdir(),
        DATABASE_URL: dbUrl.toString(),
        TEMPORAL_ADDRESS: env('TEMPORAL_ADDRESS'),
        KUBECONFIG: env('KUBECONFIG'),
        TASK_QUEUE: taskQueue,
        WORKFLOW_BUNDLE,
        WORKER_HEALTH_BIND: '127.0.0.1:0',
        LOG_LEVEL: 'debug',
        HELM_TIMEOUT_SECONDS: '120',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    // Whole lines only: a write can arrive in pieces.
    const lines = () => out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

    const polling = await eventually(() => Promise.resolve(lines().find((l) => l.msg === 'worker polling')), 60_000, `the worker to poll (stderr: ${err})`);
    const health = `http://127.0.0.1:${String(polling.healthPort)}`;
    await eventually(async () => (await fetch(`${health}/readyz`)).status === 200, 30_000, 'readyz');
    expect(await (await fetch(`${health}/healthz`)).json()).toEqual({ status: 'ok', worker: 'RUNNING' });

    const tenantId = newTenantId();
    const handle = await temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', { taskQueue, workflowId: tenantWorkflowId(tenantId), args: [{ tenantId, plan: 'starter' }] });
    try {
      await eventually(async () => (await fetch(`${health}/metrics`).then((r) => r.text())).match(/^tenant_provisioner_provisions_succeeded_total 1$/m), 120_000, 'the tenant to become active');
      const metrics = await (await fetch(`${health}/metrics`)).text();
      expect(metrics).toMatch(/^tenant_provisioner_provisions_started_total\{plan="starter"\} 1$/m);
      expect(metrics).toMatch(/^tenant_provisioner_step_duration_seconds_count\{step="deployApp",outcome="succeeded"\} 1$/m);

      // pino writes stdout asynchronously, so a line can trail the metric that counts its step.
      await eventually(() => Promise.resolve(lines().find((l) => l.activityType === 'deployApp' && l.msg === 'step completed')), 30_000, 'the deployApp "step completed" line');
      // Every line is JSON from the one logger; activity lines name tenant, workflow and run.
      const all = lines();
      expect(all.every((l) => l.service === 'tenant-provisioner-worker' && typeof l.level === 'string')).toBe(true);
      const runId = (await handle.describe()).runId;
      const activityLines = all.filter((l) => l.activityType === 'deployApp');
      expect(activityLines.length).toBeGreaterThan(0);
      for (const l of activityLines) expect(l).toMatchObject({ tenantId, workflowId: tenantWorkflowId(tenantId), runId });
      expect(activityLines.find((l) => l.msg === 'step completed')).toMatchObject({ level: 'info', step: 'deployApp' });
      // The SDK's own lines about the workflow come through the bridge with the same ids.
      expect(all.find((l) => l.msg === 'Workflow started')).toMatchObject({ tenantId, workflowId: tenantWorkflowId(tenantId), runId, level: 'debug' });
      expect(out + err).not.toContain(dbPassword);
    } finally {
      await handle.signal(deprovisionSignal, { reason: 'test cleanup', graceSeconds: 0 });
      await handle.result().catch(() => undefined);
    }

    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child!.once('exit', (c) => resolve(c)));
    expect(code).toBe(0);
  }, 300_000);
});
