/**
 * The lifecycle under failure, on the real Temporal server with typed mock activities: a change
 * that keeps failing backs off instead of spinning, shows as a condition, survives continue-as-new
 * and recovers; a failed re-run of a live tenant keeps it live; plan changes run in a safe order;
 * a pending deprovision can be cancelled; a cleanup run tears down without provisioning.
 */
import { ApplicationFailure } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import {
  cancelDeprovisionSignal,
  changePlanSignal,
  deprovisionSignal,
  statusQuery,
  suspendSignal,
  tenantWorkflowId,
  type ProvisionTenantInput,
  type TenantProgress,
} from '../../src/contract';
import type { provisionTenant } from '../../src/workflows';
import { eventually, newTenantId, uniqueTaskQueue, useTemporalClient, withWorker } from './helpers';
import { mockActivities } from './mock-activities';

const workflowsPath = require.resolve('../../src/workflows');

describe('ProvisionTenant lifecycle under failure (real Temporal server, mock activities)', () => {
  const temporal = useTemporalClient();

  function start(tenantId: string, taskQueue: string, extra: Partial<ProvisionTenantInput> = {}) {
    return temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', {
      taskQueue,
      workflowId: tenantWorkflowId(tenantId),
      args: [{ tenantId, plan: 'starter', lifecycleBackoff: { initialSeconds: 1, maxSeconds: 4 }, ...extra }],
    });
  }

  const until = (handle: WorkflowHandle, what: string, ok: (p: TenantProgress) => boolean, timeoutMs = 30_000) =>
    eventually(async () => {
      const p = await handle.query(statusQuery);
      return ok(p) ? p : undefined;
    }, timeoutMs, what);

  it('a suspend that cannot succeed backs off (bounded attempts and history), shows the condition, and recovers once fixed', async () => {
    const taskQueue = uniqueTaskQueue('wf-backoff');
    const calls: string[] = [];
    const acts = mockActivities(calls);
    // Like a namespace deleted by hand: every suspend fails at once, and for good.
    let broken = true;
    acts.deployApp.mockImplementation((input) => {
      calls.push('deployApp');
      if (input.suspended && broken) return Promise.reject(ApplicationFailure.nonRetryable(`namespaces "${input.namespace}" not found`, 'HelmRejected'));
      return Promise.resolve({ revision: 2 });
    });
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue);
      await until(handle, 'active', (p) => p.status === 'active');
      const historyBefore = (await handle.describe()).historyLength;
      await handle.signal(suspendSignal, { reason: 'payment failed' });
      const failing = await until(handle, 'the condition', (p) => !!p.condition);
      expect(failing).toMatchObject({ status: 'active', condition: { type: 'ChangeFailing', step: 'suspend', attempts: 1 } });
      expect(failing.condition!.message).toContain('not found');

      // Backoff 1, 2, 4, 4, … s: about 5 attempts in 12 s, where a hot loop makes hundreds.
      await new Promise((r) => setTimeout(r, 12_000));
      const attempts = acts.deployApp.mock.calls.filter(([i]) => i.suspended).length;
      expect(attempts).toBeGreaterThanOrEqual(3);
      expect(attempts).toBeLessThanOrEqual(6);
      const p = await handle.query(statusQuery);
      expect(p.condition!.attempts).toBeGreaterThanOrEqual(attempts - 1); // the latest may still be running
      expect(p.condition!.attempts).toBeLessThanOrEqual(attempts);
      expect(Date.parse(p.condition!.nextAttemptAt)).toBeGreaterThan(Date.parse(p.condition!.since));
      // Each failed attempt costs a bounded number of events (healing, the change, the condition mirror, a timer).
      const desc = await handle.describe();
      expect(desc.historyLength - historyBefore).toBeLessThan(40 * attempts);
      expect(desc.status.name).toBe('RUNNING');
      const mirrored = acts.recordTenantCondition.mock.calls.filter(([c]) => c.condition !== null).length;
      expect(mirrored === attempts || mirrored === attempts - 1).toBe(true); // the latest may still be on its way
      // Visibility is eventually consistent.
      const searchAttribute = async () => ((await handle.describe()).searchAttributes as Record<string, unknown[]>).TenantCondition?.[0];
      await eventually(async () => (await searchAttribute()) === 'ChangeFailing', 10_000, 'TenantCondition=ChangeFailing');

      // Each retry first put the isolation objects back (the failure may have been drift).
      expect(acts.ensureNamespace.mock.calls.length).toBeGreaterThanOrEqual(attempts);
      broken = false;
      await until(handle, 'suspended, the condition cleared', (q) => q.status === 'suspended' && !q.condition, 15_000);
      await eventually(() => Promise.resolve(acts.recordTenantCondition.mock.lastCall?.[0].condition === null), 10_000, 'the recovery mirrored');
      await eventually(async () => (await searchAttribute()) === 'Ready', 10_000, 'TenantCondition=Ready');
      await handle.terminate('test finished');
    });
  });

  it('continues as new while a change keeps failing, keeping the condition and its attempt count', async () => {
    const taskQueue = uniqueTaskQueue('wf-backoff-can');
    const acts = mockActivities([]);
    acts.deployApp.mockImplementation((input) =>
      input.suspended ? Promise.reject(ApplicationFailure.nonRetryable('helm cannot reach the namespace', 'HelmRejected')) : Promise.resolve({ revision: 1 }),
    );
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue, { maxHistoryEvents: 60, lifecycleBackoff: { initialSeconds: 1, maxSeconds: 1 } });
      await until(handle, 'active', (p) => p.status === 'active');
      await handle.signal(suspendSignal, {});
      await eventually(async () => (await handle.describe()).runId !== handle.firstExecutionRunId, 60_000, 'a continued run');
      const p = await until(handle, 'the carried condition', (q) => (q.condition?.attempts ?? 0) > 1);
      expect(p).toMatchObject({ status: 'active', condition: { step: 'suspend' } });
      expect(acts.recordTenant).toHaveBeenCalledTimes(1);
      await handle.terminate('test finished');
    });
  });

  it('a failed re-run of a live tenant undoes only what it created and keeps the tenant live', async () => {
    const taskQueue = uniqueTaskQueue('wf-rerun');
    const calls: string[] = [];
    const acts = mockActivities(calls);
    // An earlier run left a live tenant: namespace, credentials and release all exist.
    acts.inspectTenant.mockResolvedValue({ namespace: true, secret: true, release: true });
    acts.deployApp.mockRejectedValueOnce(ApplicationFailure.nonRetryable('chart rejected', 'HelmRejected'));
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue, { reconcileIntervalSeconds: 3600 });
      const p = await until(handle, 'kept live', (q) => q.status === 'active' && !!q.condition);
      expect(p.condition).toMatchObject({ step: 'reconcile', message: 'deployApp failed: chart rejected' });
      for (const undo of ['deleteNamespace', 'removeNetworkPolicies', 'removeResourceLimits', 'removeSecrets', 'uninstallApp'] as const) {
        expect(acts[undo]).not.toHaveBeenCalled();
      }
      expect(acts.setTenantStatus).not.toHaveBeenCalledWith(expect.objectContaining({ status: 'failed' }));
      expect(acts.setTenantStatus).toHaveBeenLastCalledWith({ tenantId, status: 'active', step: 'markActive' });
      // The lifecycle retries what the run could not do, through reconciliation.
      await eventually(() => Promise.resolve(acts.reconcileApp.mock.calls.length > 0), 15_000, 'a reconciliation');
      await until(handle, 'the condition cleared', (q) => !q.condition);
      expect((await handle.describe()).status.name).toBe('RUNNING');
      await handle.terminate('test finished');
    });
  });

  it('a failed first run still undoes everything it created', async () => {
    const taskQueue = uniqueTaskQueue('wf-first-fail');
    const calls: string[] = [];
    const acts = mockActivities(calls);
    acts.inspectTenant.mockResolvedValue({ namespace: false, secret: false, release: false });
    acts.deployApp.mockRejectedValue(ApplicationFailure.nonRetryable('chart rejected', 'HelmRejected'));
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue);
      await expect(handle.result()).rejects.toThrow();
    });
    expect(calls.filter((c) => c.startsWith('remove') || c === 'uninstallApp' || c === 'deleteNamespace')).toEqual([
      'uninstallApp',
      'removeSecrets',
      'removeResourceLimits',
      'removeNetworkPolicies',
      'deleteNamespace',
    ]);
  });

  it.each([
    // The plan's egress comes with its limits: the network policies are applied again.
    ['pro', 'starter', ['deployApp', 'ensureNamespace', 'applyResourceLimits', 'applyNetworkPolicies', 'setTenantPlan']],
    ['starter', 'pro', ['ensureNamespace', 'applyResourceLimits', 'applyNetworkPolicies', 'deployApp', 'setTenantPlan']],
  ])('a plan change %s → %s runs in a safe order', async (from, to, order) => {
    const taskQueue = uniqueTaskQueue('wf-plan-order');
    const calls: string[] = [];
    const acts = mockActivities(calls);
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue, { plan: from });
      await until(handle, 'active', (p) => p.status === 'active');
      calls.length = 0;
      await handle.signal(changePlanSignal, { plan: to });
      await until(handle, `plan ${to}`, (p) => p.plan === to);
      expect(calls).toEqual(['planChangeOrder', ...order]);
      await handle.terminate('test finished');
    });
  });

  it('a pending deprovision can be cancelled during its grace period', async () => {
    const taskQueue = uniqueTaskQueue('wf-cancel-deprov');
    const acts = mockActivities([]);
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue);
      await until(handle, 'active', (p) => p.status === 'active');
      await handle.signal(deprovisionSignal, { reason: 'subscription deleted', graceSeconds: 4 });
      await eventually(() => Promise.resolve(acts.recordDeprovisionDeadline.mock.calls.length === 1), 10_000, 'the deadline mirrored');
      await handle.signal(cancelDeprovisionSignal);
      await eventually(() => Promise.resolve(acts.recordDeprovisionDeadline.mock.calls.length === 2), 10_000, 'the cancellation mirrored');
      expect(acts.recordDeprovisionDeadline).toHaveBeenLastCalledWith({ tenantId, deprovisionAt: null });
      const p = await handle.query(statusQuery);
      expect(p.deprovisionAt).toBeUndefined();
      // Past the old deadline the tenant is still there.
      await new Promise((r) => setTimeout(r, 5_000));
      expect(acts.uninstallApp).not.toHaveBeenCalled();
      expect((await handle.query(statusQuery)).status).toBe('active');
      await handle.terminate('test finished');
    });
  });

  it('a cleanup run provisions nothing and removes every namespace labelled as the tenant’s', async () => {
    const taskQueue = uniqueTaskQueue('wf-cleanup');
    const calls: string[] = [];
    const acts = mockActivities(calls);
    const tenantId = newTenantId();
    acts.findTenantNamespaces.mockImplementation(() => {
      calls.push('findTenantNamespaces');
      return Promise.resolve([`old-${tenantId}`, `tenant-${tenantId}`]);
    });
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await temporal.client.workflow.signalWithStart<typeof provisionTenant, [{ reason?: string }]>('provisionTenant', {
        taskQueue,
        workflowId: tenantWorkflowId(tenantId),
        args: [{ tenantId, plan: 'starter', cleanup: { reason: 'operator cleanup' } }],
        signal: deprovisionSignal,
        signalArgs: [{ reason: 'operator cleanup' }],
      });
      expect(await handle.result()).toEqual({ tenantId, status: 'deprovisioned', namespace: `tenant-${tenantId}` });
    });
    expect(calls).toEqual([
      'setTenantStatus',
      'assignNamespace',
      'findTenantNamespaces',
      'uninstallApp',
      'deleteNamespace',
      'uninstallApp',
      'deleteNamespace',
      'setTenantStatus',
    ]);
    expect(acts.deleteNamespace.mock.calls.map(([r]) => r.namespace)).toEqual([`tenant-${tenantId}`, `old-${tenantId}`]);
    expect(acts.recordTenant).not.toHaveBeenCalled();
    expect(acts.setTenantStatus).toHaveBeenLastCalledWith({ tenantId, status: 'deprovisioned', step: 'deprovision' });
  });

  it('a teardown step that fails is retried with backoff until it works, never failing the run', async () => {
    const taskQueue = uniqueTaskQueue('wf-teardown-retry');
    const acts = mockActivities([]);
    acts.deleteNamespace
      .mockRejectedValueOnce(ApplicationFailure.nonRetryable('namespace is forbidden', 'KubernetesForbidden'))
      .mockRejectedValueOnce(ApplicationFailure.nonRetryable('namespace is forbidden', 'KubernetesForbidden'));
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue);
      await until(handle, 'active', (p) => p.status === 'active');
      await handle.signal(deprovisionSignal, {});
      const p = await until(handle, 'the teardown condition', (q) => !!q.condition);
      expect(p).toMatchObject({ status: 'deprovisioning', condition: { step: 'deprovision', message: 'namespace is forbidden' } });
      expect(await handle.result()).toMatchObject({ status: 'deprovisioned' });
      expect(acts.deleteNamespace).toHaveBeenCalledTimes(3);
    });
  });
});
