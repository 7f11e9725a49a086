/**
 * A tenant's life under faults, on the real stack with the real activities: a suspend whose
 * namespace was deleted by hand backs off and heals; a failed re-run keeps a live tenant live with
 * its original credentials; a pro → starter downgrade succeeds; a cleanup run removes a closed
 * tenant; reconciliation reinstalls a missing release; helm killed mid-upgrade is recovered.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { V1Deployment, V1Namespace, V1Secret } from '@kubernetes/client-node';
import type { WorkflowHandle } from '@temporalio/client';
import { createActivities } from '../../src/activities';
import { createTenantWorkflows } from '../../src/api/temporal';
import { changePlanSignal, deprovisionSignal, statusQuery, suspendSignal, tenantWorkflowId, type TenantCondition, type TenantProgress } from '../../src/contract';
import { createHelm } from '../../src/helm/helm';
import { TENANT_RELEASE_NAME } from '../../src/naming';
import type { provisionTenant } from '../../src/workflows';
import { recordFaultRow } from './fault-report';
import { ToxiProxy } from './toxiproxy';
import { ROOT, activityEnvFor, env, eventually, newTenantId, realDeps, temporalClient, testDb, testKube, uniqueTaskQueue, useTemporalClient, withWorker } from './helpers';

const run = promisify(execFile);
const workflowsPath = require.resolve('../../src/workflows');
const BACKOFF = { initialSeconds: 2, maxSeconds: 8 };

/** One tenant, one scenario: it completed, nothing was duplicated or left over. */
const oneTenantRow = (fault: string, began: number, note?: string) =>
  recordFaultRow({ fault, tenants: 1, completed: 1, lost: 0, duplicated: 0, leftOver: 0, seconds: Math.round((Date.now() - began) / 1000), ...(note ? { note } : {}) });

describe('a tenant’s life under faults (real stack)', () => {
  const kube = testKube();
  const db = testDb();
  const temporal = useTemporalClient();
  const helm = createHelm({ binary: 'helm', kubeconfig: env('KUBECONFIG') });
  afterAll(() => db.$disconnect());

  const start = (taskQueue: string, tenantId: string, extra: Record<string, unknown> = {}) =>
    temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', {
      taskQueue,
      workflowId: tenantWorkflowId(tenantId),
      args: [{ tenantId, plan: 'starter', lifecycleBackoff: BACKOFF, ...extra }],
    });
  const until = (h: WorkflowHandle, what: string, ok: (p: TenantProgress) => boolean, ms = 180_000) =>
    eventually(async () => {
      const p = await h.query(statusQuery);
      return ok(p) ? p : undefined;
    }, ms, what);
  const secretData = async (namespace: string) =>
    JSON.stringify((await kube.read<V1Secret>({ apiVersion: 'v1', kind: 'Secret', name: 'tenant-credentials', namespace }))?.data ?? null);
  const nsGone = (namespace: string) =>
    eventually(async () => !(await kube.read({ apiVersion: 'v1', kind: 'Namespace', name: namespace })), 120_000, `namespace ${namespace} gone`);

  it('a suspend whose namespace was deleted by hand backs off, shows the condition in PostgreSQL, and heals', async () => {
    const began = Date.now();
    let stepLogRows = 0;
    const taskQueue = uniqueTaskQueue('fault-suspend');
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    await withWorker({ taskQueue, workflowsPath, activities: createActivities(realDeps(db)) }, async () => {
      const h = await start(taskQueue, tenantId);
      await until(h, 'active', (p) => p.status === 'active');
      // Deleted by hand, and a suspend arrives before anything notices.
      await kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: namespace });
      await h.signal(suspendSignal, { reason: 'payment failed' });
      const failing = await until(h, 'the condition', (p) => !!p.condition, 120_000);
      expect(failing.condition).toMatchObject({ type: 'ChangeFailing', step: 'suspend' });
      const row = await eventually(async () => {
        const r = await db.tenant.findUnique({ where: { id: tenantId } });
        return (r?.metadata as { condition?: TenantCondition } | null)?.condition ? r : undefined;
      }, 30_000, 'the condition in PostgreSQL');
      expect(row!.lastError).toMatch(/^suspend failed \(attempt \d+, next at .+\): /);
      // Backoff bounds the step log: a hot loop wrote 87 rows in under a minute.
      const rows = await db.tenantStep.count({ where: { tenantId } });
      stepLogRows = rows;
      expect(rows).toBeLessThan(60);
      // The retry puts the namespace back first (it is the tenant's), then suspends.
      const healed = await until(h, 'suspended', (p) => p.status === 'suspended' && !p.condition, 180_000);
      expect(healed.lastError).toBeUndefined();
      expect(await kube.read<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', name: namespace })).toBeDefined();
      await eventually(async () => {
        const r = await db.tenant.findUnique({ where: { id: tenantId } });
        return r?.status === 'suspended' && !(r.metadata as { condition?: unknown }).condition && r.lastError === null;
      }, 30_000, 'the recovery in PostgreSQL');
      await h.signal(deprovisionSignal, {});
      expect(await h.result()).toMatchObject({ status: 'deprovisioned' });
    });
    await nsGone(namespace);
    oneTenantRow('a suspend that cannot succeed (namespace deleted by hand)', began, `backs off (${stepLogRows} step-log rows while failing), shows the condition, heals and suspends`);
  });

  it('a failed re-run leaves a live tenant live, with its original credentials', async () => {
    const began = Date.now();
    const taskQueue = uniqueTaskQueue('fault-rerun');
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    await withWorker({ taskQueue, workflowsPath, activities: createActivities(realDeps(db)) }, async () => {
      const first = await start(taskQueue, tenantId);
      await until(first, 'active', (p) => p.status === 'active');
      // Its workflow ends while the tenant lives (as Temporal's history limit would terminate it).
      await first.terminate('simulated history limit');
    });
    const credentials = await secretData(namespace);
    expect(credentials).not.toBe('null');
    const revision = (await helm.status(TENANT_RELEASE_NAME, namespace))!.revision;

    // A later payment starts a new run, whose Helm step fails for good (a broken chart).
    const broken = path.join(ROOT, 'test/fixtures/charts/broken');
    await withWorker({ taskQueue, workflowsPath, activities: createActivities(realDeps(db, { chart: broken })) }, async () => {
      const again = await start(taskQueue, tenantId, { reconcileIntervalSeconds: 3600 });
      const p = await until(again, 'kept live', (q) => q.status === 'active' && !!q.condition);
      expect(p.condition).toMatchObject({ step: 'reconcile' });
      expect(p.condition!.message).toMatch(/^deployApp failed: /);
      expect(p.compensatedSteps).toEqual([]);
      await again.terminate('test finished');
    });
    expect(await kube.read({ apiVersion: 'v1', kind: 'Namespace', name: namespace })).toBeDefined();
    expect(await secretData(namespace)).toBe(credentials);
    const release = await helm.status(TENANT_RELEASE_NAME, namespace);
    expect(release?.status).toBe('deployed');
    expect(release!.revision).toBeGreaterThanOrEqual(revision);
    const row = await db.tenant.findUnique({ where: { id: tenantId } });
    expect(row?.status).toBe('active');

    // Cleanup of a tenant whose workflow is closed: a cleanup run removes everything.
    await withWorker({ taskQueue, workflowsPath, activities: createActivities(realDeps(db)) }, async () => {
      const t = await temporalClient();
      try {
        const workflows = createTenantWorkflows({ client: t.client, connection: t.connection, taskQueue, timeoutMs: 10_000 });
        await workflows.cleanup({ tenantId, plan: 'starter', request: { reason: 'operator cleanup' } });
      } finally {
        await t.connection.close();
      }
      const h = temporal.client.workflow.getHandle<typeof provisionTenant>(tenantWorkflowId(tenantId));
      expect(await h.result()).toMatchObject({ status: 'deprovisioned' });
    });
    await nsGone(namespace);
    expect((await db.tenant.findUnique({ where: { id: tenantId } }))?.status).toBe('deprovisioned');
    oneTenantRow('a failed re-run of a live tenant (broken chart), then a cleanup run for its closed workflow', began, 'stayed live with its original credentials; the cleanup run removed everything');
  });

  it('a pro → starter downgrade succeeds, shrinking the app before the quota', async () => {
    const began = Date.now();
    const taskQueue = uniqueTaskQueue('fault-downgrade');
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    await withWorker({ taskQueue, workflowsPath, activities: createActivities(realDeps(db)) }, async () => {
      const h = await start(taskQueue, tenantId, { plan: 'pro' });
      await until(h, 'active', (p) => p.status === 'active');
      await h.signal(changePlanSignal, { plan: 'starter' });
      const p = await until(h, 'plan starter', (q) => q.plan === 'starter' || !!q.condition);
      expect(p.condition).toBeUndefined();
      expect(p.plan).toBe('starter');
      const [deployment] = await kube.list<V1Deployment>('apps/v1', 'Deployment', namespace, `app.kubernetes.io/instance=${TENANT_RELEASE_NAME}`);
      expect(deployment?.status?.readyReplicas).toBe(deployment?.spec?.replicas);
      await h.signal(deprovisionSignal, {});
      await h.result();
    });
    await nsGone(namespace);
    oneTenantRow('a pro → starter downgrade', began);
  });

  it('reconciliation reinstalls a release that was uninstalled by hand', async () => {
    const began = Date.now();
    const taskQueue = uniqueTaskQueue('fault-reconcile-app');
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    await withWorker({ taskQueue, workflowsPath, activities: createActivities(realDeps(db)) }, async () => {
      const h = await start(taskQueue, tenantId, { reconcileIntervalSeconds: 3 });
      await until(h, 'active', (p) => p.status === 'active');
      await run('helm', ['--kubeconfig', env('KUBECONFIG'), 'uninstall', TENANT_RELEASE_NAME, '-n', namespace, '--wait'], { env: { ...process.env, HELM_DRIVER: 'configmap' } });
      expect(await helm.status(TENANT_RELEASE_NAME, namespace)).toBeUndefined();
      await eventually(async () => (await helm.status(TENANT_RELEASE_NAME, namespace))?.status === 'deployed', 60_000, 'the release reinstalled');
      await h.signal(deprovisionSignal, {});
      await h.result();
    });
    await nsGone(namespace);
    oneTenantRow('the tenant release uninstalled by hand', began, 'reconciliation reinstalled it');
  });

  it('helm killed with SIGKILL in the middle of an upgrade leaves a locked release that the next attempt recovers', async () => {
    const began = Date.now();
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    const deps = { ...realDeps(db), settings: { ...realDeps(db).settings, helmLockStaleSeconds: 1 } };
    const acts = createActivities(deps);
    // Without --wait helm is done in a fraction of a second; behind 400 ms of latency per packet
    // its upgrade takes seconds, long enough to be caught holding the lock.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'helm-kill-'));
    const upstream = /server: https:\/\/([^\s]+)/.exec(readFileSync(env('KUBECONFIG'), 'utf8'))![1]!;
    const proxy = await ToxiProxy.create('helm-kill', upstream);
    await proxy.addToxic('slow', { type: 'latency', attributes: { latency: 400 } });
    const slowKubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(slowKubeconfig, readFileSync(env('KUBECONFIG'), 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://${proxy.listen}`), { mode: 0o600 });
    const slowActs = createActivities({ ...deps, helm: createHelm({ binary: 'helm', kubeconfig: slowKubeconfig }) });
    const env1 = activityEnvFor(tenantId);
    const ref = { tenantId, namespace };
    await env1.run(() => acts.recordTenant({ tenantId, plan: 'starter' }));
    await env1.run(() => acts.assignNamespace({ tenantId }));
    await env1.run(() => acts.ensureNamespace({ ...ref, plan: 'starter' }));
    await env1.run(() => acts.applyResourceLimits({ ...ref, plan: 'starter' }));
    await env1.run(() => acts.ensureSecrets({ ...ref, plan: 'starter' }));
    await env1.run(() => acts.deployApp({ ...ref, plan: 'starter', suspended: false }));
    await env1.run(() => acts.applyResourceLimits({ ...ref, plan: 'pro' }));
    try {
      // The upgrade to pro is killed once it holds the release's lock.
      const upgrading = env1.run(() => slowActs.deployApp({ ...ref, plan: 'pro', suspended: false })).then(() => 'finished', (e: Error) => e.message);
      const pid = await eventually(async () => {
        const { stdout } = await run('pgrep', ['-f', `upgrade ${TENANT_RELEASE_NAME} .*--namespace ${namespace}`]).catch(() => ({ stdout: '' }));
        return Number(stdout.trim().split('\n')[0]) || undefined;
      }, 20_000, 'helm upgrade running');
      await eventually(async () => (await helm.status(TENANT_RELEASE_NAME, namespace))?.status.startsWith('pending-'), 20_000, 'the upgrade to hold the lock');
      process.kill(pid, 'SIGKILL');
      expect(await upgrading).toMatch(/helm upgrade --install .* failed/);
      const locked = await helm.status(TENANT_RELEASE_NAME, namespace);
      expect(locked?.status).toMatch(/^pending-/);
      // A first attempt does not look for a lock: helm refuses (retryable), and the next attempt
      // (Temporal's retry) finds the stale lock, rolls back, and upgrades.
      await new Promise((r) => setTimeout(r, 1_500));
      const refused = await activityEnvFor(tenantId).run(() => acts.deployApp({ ...ref, plan: 'pro', suspended: false })).then(() => undefined, (e: unknown) => e);
      expect(refused).toMatchObject({ type: 'HelmFailed', nonRetryable: false });
      expect((refused as Error).message).toMatch(/another operation .* is in progress/);
      await activityEnvFor(tenantId, 2).run(() => acts.deployApp({ ...ref, plan: 'pro', suspended: false }));
      const release = await helm.status(TENANT_RELEASE_NAME, namespace);
      expect(release?.status).toBe('deployed');
      expect(await helm.values(TENANT_RELEASE_NAME, namespace)).toMatchObject({ tenant: { plan: 'pro' } });
    } finally {
      await kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: namespace });
      await proxy.delete();
      rmSync(dir, { recursive: true, force: true });
    }
    await nsGone(namespace);
    oneTenantRow('helm killed (SIGKILL) during an upgrade', began, 'the pending-upgrade lock was rolled back and the upgrade redone');
  });
});
