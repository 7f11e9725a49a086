/**
 * ProvisionTenant on the real Temporal server, with typed mock activities: the saga, the status
 * query, signals during and after provisioning, idempotent starts and continue-as-new.
 */
import { ActivityFailure, ApplicationFailure, WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import type { Activities } from '../../src/activities';
import {
  PROVISION_STEPS,
  changePlanSignal,
  deprovisionSignal,
  resumeSignal,
  statusQuery,
  suspendSignal,
  tenantWorkflowId,
  type ProvisionStep,
  type ProvisionTenantInput,
  type ProvisionTenantResult,
} from '../../src/contract';
import type { provisionTenant } from '../../src/workflows';
import { eventually, newTenantId, uniqueTaskQueue, useTemporalClient, withWorker } from './helpers';
import { mockActivities } from './mock-activities';

/** The activity each provisioning step runs, and the compensation registered before it. */
const STEP_ACTIVITY: Record<ProvisionStep, keyof Activities> = {
  recordTenant: 'recordTenant',
  assignNamespace: 'assignNamespace',
  ensureNamespace: 'ensureNamespace',
  applyNetworkPolicies: 'applyNetworkPolicies',
  applyResourceLimits: 'applyResourceLimits',
  ensureSecrets: 'ensureSecrets',
  deployApp: 'deployApp',
  markActive: 'setTenantStatus',
};
const COMPENSATION: Partial<Record<ProvisionStep, keyof Activities>> = {
  ensureNamespace: 'deleteNamespace',
  applyNetworkPolicies: 'removeNetworkPolicies',
  applyResourceLimits: 'removeResourceLimits',
  ensureSecrets: 'removeSecrets',
  deployApp: 'uninstallApp',
};
const ALL_COMPENSATIONS = new Set(Object.values(COMPENSATION));

const workflowsPath = require.resolve('../../src/workflows');

describe('ProvisionTenant workflow (real Temporal server, mock activities)', () => {
  const temporal = useTemporalClient();

  function start(
    tenantId: string,
    taskQueue: string,
    extra: Partial<Pick<ProvisionTenantInput, 'plan' | 'maxHistoryEvents' | 'reconcileIntervalSeconds' | 'lifecycleBackoff'>> = {},
  ) {
    return temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', {
      taskQueue,
      workflowId: tenantWorkflowId(tenantId),
      // Lifecycle retries after 1 s here (30 s by default), so a test sees a retry quickly.
      args: [{ tenantId, lifecycleBackoff: { initialSeconds: 1, maxSeconds: 4 }, ...extra, plan: extra.plan ?? 'starter' }],
    });
  }

  const waitForStatus = (handle: WorkflowHandle, status: string) =>
    eventually(async () => {
      const p = await handle.query(statusQuery);
      return p.status === status ? p : undefined;
    }, 30_000, `status ${status}`);

  it('provisions every step in order, reports progress, stays alive, and deprovisions on signal', async () => {
    const taskQueue = uniqueTaskQueue('wf-happy');
    const calls: string[] = [];
    const acts = mockActivities(calls);
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue);
      const progress = await waitForStatus(handle, 'active');
      expect(progress).toMatchObject({
        tenantId,
        status: 'active',
        plan: 'starter',
        namespace: `tenant-${tenantId}`,
        completedSteps: [...PROVISION_STEPS],
        compensatedSteps: [],
      });
      expect(progress.currentStep).toBeUndefined();
      // What exists before anything is created decides what a failure may undo.
      // ... and active waits for the isolation check after the app is deployed.
      expect(calls).toEqual(
        PROVISION_STEPS.map((s) => STEP_ACTIVITY[s]).flatMap((a) => (a === 'assignNamespace' ? [a, 'inspectTenant'] : a === 'deployApp' ? [a, 'verifyIsolation'] : [a])),
      );
      expect(acts.setTenantStatus).toHaveBeenCalledWith({ tenantId, status: 'active', step: 'markActive' });
      // Nothing secret crosses the workflow boundary: ensureSecrets gets ids, returns only a name.
      expect(acts.ensureSecrets.mock.calls[0]![0]).toEqual({ tenantId, namespace: `tenant-${tenantId}`, plan: 'starter' });

      const desc = await handle.describe();
      expect(desc.status.name).toBe('RUNNING');

      calls.length = 0;
      await handle.signal(deprovisionSignal, { reason: 'customer cancelled' });
      const result: ProvisionTenantResult = await handle.result();
      expect(result).toEqual({ tenantId, status: 'deprovisioned', namespace: `tenant-${tenantId}` });
      expect(calls).toEqual(['setTenantStatus', 'uninstallApp', 'deleteNamespace', 'setTenantStatus']);
      expect(acts.setTenantStatus).toHaveBeenLastCalledWith({ tenantId, status: 'deprovisioned', step: 'deprovision' });
    });
  });

  describe.each(PROVISION_STEPS.map((s, i) => [s, i] as const))('a final failure at step %s', (failingStep, index) => {
    it('undoes the steps started so far in reverse, marks the tenant failed and fails the run with the cause', async () => {
      const taskQueue = uniqueTaskQueue('wf-saga');
      const calls: string[] = [];
      const acts = mockActivities(calls);
      const activity = STEP_ACTIVITY[failingStep];
      const mock = acts[activity] as unknown as jest.Mock<Promise<unknown>, [{ status?: string }]>;
      const original = mock.getMockImplementation()!;
      mock.mockImplementation((input) => {
        // setTenantStatus also records the final `failed` status; only the markActive call fails.
        if (activity === 'setTenantStatus' && input.status !== 'active') return original(input);
        calls.push(activity);
        throw ApplicationFailure.nonRetryable(`${failingStep} exploded`, 'KubernetesRejected');
      });
      const tenantId = newTenantId();

      const err: unknown = await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
        const handle = await start(tenantId, taskQueue);
        return handle.result().then(
          () => undefined,
          (e: unknown) => e,
        );
      });

      // The whole failure chain: run failed → ProvisioningFailed → the step's ApplicationFailure
      // (wrapped in an ActivityFailure when the step ran as an activity task: Helm's).
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const top = (err as WorkflowFailedError).cause;
      expect(top).toBeInstanceOf(ApplicationFailure);
      expect((top as ApplicationFailure).type).toBe('ProvisioningFailed');
      expect((top as ApplicationFailure).message).toBe(`${failingStep} failed: ${failingStep} exploded`);
      const root = (top?.cause instanceof ActivityFailure ? top.cause.cause : top?.cause) as ApplicationFailure;
      expect(root).toBeInstanceOf(ApplicationFailure);
      expect(root.type).toBe('KubernetesRejected');
      expect(root.message).toBe(`${failingStep} exploded`);
      const [result] = (top as ApplicationFailure).details as [ProvisionTenantResult];
      expect(result).toMatchObject({ tenantId, status: 'failed', error: { step: failingStep, type: 'KubernetesRejected' } });

      // Non-retryable: tried once.
      expect(calls.filter((c) => c === activity && c !== 'setTenantStatus')).toHaveLength(activity === 'setTenantStatus' ? 0 : 1);
      // Compensations of every step up to and including the failing one (it may have half-succeeded), newest first.
      const expectedUndo = PROVISION_STEPS.slice(0, index + 1)
        .map((s) => COMPENSATION[s])
        .filter((c): c is keyof Activities => c !== undefined)
        .reverse();
      expect(calls.filter((c) => ALL_COMPENSATIONS.has(c as keyof Activities))).toEqual(expectedUndo);
      // Steps after the failure never ran.
      for (const later of PROVISION_STEPS.slice(index + 1)) {
        if (STEP_ACTIVITY[later] !== 'setTenantStatus') expect(acts[STEP_ACTIVITY[later]]).not.toHaveBeenCalled();
      }
      expect(acts.setTenantStatus).toHaveBeenLastCalledWith({
        tenantId,
        status: 'failed',
        step: failingStep,
        error: `${failingStep} failed: ${failingStep} exploded`,
      });
    });
  });

  it('records a failing compensation without hiding the original error', async () => {
    const taskQueue = uniqueTaskQueue('wf-undo-fails');
    const calls: string[] = [];
    const acts = mockActivities(calls);
    acts.deployApp.mockRejectedValue(ApplicationFailure.nonRetryable('chart rejected', 'HelmRejected'));
    acts.removeSecrets.mockRejectedValue(ApplicationFailure.nonRetryable('secrets are forbidden', 'KubernetesForbidden'));
    const tenantId = newTenantId();
    const err = await withWorker({ taskQueue, workflowsPath, activities: acts }, () =>
      start(tenantId, taskQueue).then((h) => h.result().then(() => undefined, (e: unknown) => e)),
    );
    const top = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(top.message).toBe('deployApp failed: chart rejected; cleanup also failed: undo:ensureSecrets: secrets are forbidden');
    const [result] = top.details as [ProvisionTenantResult];
    expect(result.error).toMatchObject({ step: 'deployApp', message: 'chart rejected' });
    expect(result.compensationErrors).toEqual([{ step: 'undo:ensureSecrets', message: 'secrets are forbidden', type: 'KubernetesForbidden' }]);
    // The remaining compensations still ran after the failing one.
    expect(acts.removeResourceLimits).toHaveBeenCalled();
    expect(acts.removeNetworkPolicies).toHaveBeenCalled();
    expect(acts.deleteNamespace).toHaveBeenCalled();
  });

  it('retries a transient failure and then succeeds', async () => {
    const taskQueue = uniqueTaskQueue('wf-transient');
    const calls: string[] = [];
    const acts = mockActivities(calls);
    acts.applyNetworkPolicies
      .mockRejectedValueOnce(ApplicationFailure.retryable('apiserver returned 503', 'KubernetesUnavailable'))
      .mockRejectedValueOnce(new Error('socket hang up'));
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue);
      await waitForStatus(handle, 'active');
      expect(acts.applyNetworkPolicies).toHaveBeenCalledTimes(3);
      expect(acts.removeNetworkPolicies).not.toHaveBeenCalled();
      await handle.terminate('test finished');
    });
  });

  it('honours a deprovision signal sent while provisioning is still running', async () => {
    const taskQueue = uniqueTaskQueue('wf-deprov-early');
    const calls: string[] = [];
    const acts = mockActivities(calls);
    let release!: () => void;
    const secretsStarted = new Promise<void>((startedResolve) => {
      acts.ensureSecrets.mockImplementation(() => {
        calls.push('ensureSecrets');
        startedResolve();
        return new Promise((r) => (release = () => r({ secretName: 'tenant-credentials', created: true })));
      });
    });
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue);
      await secretsStarted;
      await handle.signal(deprovisionSignal, { reason: 'cancelled during signup' });
      release();
      const result = await handle.result();
      expect(result).toMatchObject({ tenantId, status: 'deprovisioned' });
    });
    // The quick steps run as local activities inside one workflow task, so the signal is seen at
    // the next step the server is involved in: before Helm's, or right after it. Either way the
    // tenant never becomes active, and whatever was created is torn down.
    const rest = calls.slice(calls.indexOf('ensureSecrets')).filter((c) => c !== 'deployApp');
    expect(acts.deployApp.mock.calls.length).toBeLessThanOrEqual(1);
    expect(rest).toEqual(['ensureSecrets', 'setTenantStatus', 'uninstallApp', 'deleteNamespace', 'setTenantStatus']);
    expect(acts.setTenantStatus).not.toHaveBeenCalledWith(expect.objectContaining({ status: 'active' }));
    expect(acts.setTenantStatus).toHaveBeenLastCalledWith({ tenantId, status: 'deprovisioned', step: 'deprovision' });
  });

  it('waits out a deprovision grace period, then tears the tenant down', async () => {
    const taskQueue = uniqueTaskQueue('wf-grace');
    const calls: string[] = [];
    const acts = mockActivities(calls);
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue);
      await waitForStatus(handle, 'active');
      await handle.signal(deprovisionSignal, { reason: 'subscription deleted', graceSeconds: 3 });
      const pending = await eventually(async () => {
        const p = await handle.query(statusQuery);
        return p.deprovisionAt ? p : undefined;
      }, 10_000, 'deprovisionAt');
      expect(pending.status).toBe('active');
      expect(acts.uninstallApp).not.toHaveBeenCalled();
      await eventually(() => Promise.resolve(acts.recordDeprovisionDeadline.mock.calls.length > 0), 10_000, 'the deadline mirrored');
      expect(acts.recordDeprovisionDeadline).toHaveBeenCalledWith({ tenantId, deprovisionAt: pending.deprovisionAt });
      expect(await handle.result()).toMatchObject({ status: 'deprovisioned' });
      expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(pending.deprovisionAt!));
    });
  });

  it('carries on where it was after the worker restarts in the middle of a step', async () => {
    const taskQueue = uniqueTaskQueue('wf-restart');
    const tenantId = newTenantId();
    const before: string[] = [];
    const first = mockActivities(before);
    let deployStarted!: () => void;
    const deploying = new Promise<void>((resolve) => (deployStarted = resolve));
    // Helm is still waiting when the worker goes away: the activity sees the cancellation and stops.
    first.deployApp.mockImplementation(() => {
      before.push('deployApp');
      deployStarted();
      return new Promise((_resolve, reject) => {
        Context.current().cancellationSignal.addEventListener('abort', () => reject(new Error('worker shutting down')));
      });
    });
    const handle = await withWorker({ taskQueue, workflowsPath, activities: first, shutdownGraceTime: '1s' }, async () => {
      const h = await start(tenantId, taskQueue);
      await deploying;
      return h;
    });

    const after: string[] = [];
    const second = mockActivities(after);
    await withWorker({ taskQueue, workflowsPath, activities: second }, async () => {
      const progress = await waitForStatus(handle, 'active');
      expect(progress.completedSteps).toEqual([...PROVISION_STEPS]);
      await handle.terminate('test finished');
    });
    // Completed steps are not run again; the interrupted one is retried on the new worker.
    expect(before).toEqual(['recordTenant', 'assignNamespace', 'inspectTenant', 'ensureNamespace', 'applyNetworkPolicies', 'applyResourceLimits', 'ensureSecrets', 'deployApp']);
    expect(after).toEqual(['deployApp', 'verifyIsolation', 'setTenantStatus']);
    expect(second.uninstallApp).not.toHaveBeenCalled();
  });

  it('re-applies a live tenant’s isolation objects and checks its app periodically', async () => {
    const taskQueue = uniqueTaskQueue('wf-reconcile');
    const calls: string[] = [];
    const acts = mockActivities(calls);
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue, { reconcileIntervalSeconds: 1 });
      await waitForStatus(handle, 'active');
      await eventually(() => Promise.resolve(acts.applyNetworkPolicies.mock.calls.length >= 3), 20_000, 'two reconciliations');
      const progress = await handle.query(statusQuery);
      expect(progress).toMatchObject({ status: 'active', completedSteps: [...PROVISION_STEPS] });
      await handle.terminate('test finished');
    });
    const afterProvisioning = calls.slice(calls.indexOf('setTenantStatus') + 1);
    expect(afterProvisioning.slice(0, 5)).toEqual(['ensureNamespace', 'applyNetworkPolicies', 'applyResourceLimits', 'ensureSecrets', 'reconcileApp']);
    expect(acts.reconcileApp).toHaveBeenCalledWith({ tenantId, namespace: `tenant-${tenantId}`, plan: 'starter', suspended: false });
    // Reinstalling is reconcileApp's decision (only on drift); the app is not redeployed blindly.
    expect(acts.deployApp).toHaveBeenCalledTimes(1);
  });

  it('never runs two executions for one tenant', async () => {
    const taskQueue = uniqueTaskQueue('wf-dup');
    const acts = mockActivities([]);
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const first = await start(tenantId, taskQueue);
      await expect(start(tenantId, taskQueue)).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
      // signalWithStart on a running tenant signals the existing run instead of starting another.
      const again = await temporal.client.workflow.signalWithStart<typeof provisionTenant, [{ plan: string }]>('provisionTenant', {
        taskQueue,
        workflowId: tenantWorkflowId(tenantId),
        args: [{ tenantId, plan: 'starter' }],
        signal: changePlanSignal,
        signalArgs: [{ plan: 'starter' }],
      });
      expect(again.signaledRunId).toBe(first.firstExecutionRunId);
      await waitForStatus(first, 'active');
      expect(acts.recordTenant).toHaveBeenCalledTimes(1);
      await first.terminate('test finished');
    });
  });

  it('changes plan, suspends and resumes through signals', async () => {
    const taskQueue = uniqueTaskQueue('wf-lifecycle');
    const calls: string[] = [];
    const acts = mockActivities(calls);
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue);
      await waitForStatus(handle, 'active');

      await handle.signal(changePlanSignal, { plan: 'pro' });
      await eventually(async () => (await handle.query(statusQuery)).plan === 'pro', 30_000, 'plan pro');
      expect(acts.applyResourceLimits).toHaveBeenLastCalledWith({ tenantId, namespace, plan: 'pro' });
      expect(acts.deployApp).toHaveBeenLastCalledWith({ tenantId, namespace, plan: 'pro', suspended: false });
      expect(acts.setTenantPlan).toHaveBeenCalledWith({ tenantId, plan: 'pro' });

      await handle.signal(suspendSignal, { reason: 'payment failed' });
      await waitForStatus(handle, 'suspended');
      expect(acts.deployApp).toHaveBeenLastCalledWith({ tenantId, namespace, plan: 'pro', suspended: true });

      await handle.signal(resumeSignal);
      await waitForStatus(handle, 'active');
      expect(acts.deployApp).toHaveBeenLastCalledWith({ tenantId, namespace, plan: 'pro', suspended: false });

      // A plan change that fails leaves the tenant as it was, shows the reason, and is tried again.
      acts.applyResourceLimits.mockRejectedValueOnce(ApplicationFailure.nonRetryable('quota too small for running pods', 'KubernetesRejected'));
      await handle.signal(changePlanSignal, { plan: 'starter' });
      const after = await eventually(async () => {
        const p = await handle.query(statusQuery);
        return p.condition ? p : undefined;
      }, 30_000, 'the failed plan change');
      expect(after).toMatchObject({
        status: 'active',
        plan: 'pro',
        lastError: { step: 'changePlan', message: 'quota too small for running pods' },
        condition: { type: 'ChangeFailing', step: 'changePlan', message: 'quota too small for running pods', attempts: 1 },
      });
      // Mirrored into PostgreSQL by the activity that runs right after the query sees it.
      await eventually(() => Promise.resolve(acts.recordTenantCondition.mock.calls.length > 0), 10_000, 'the condition mirrored');
      expect(acts.recordTenantCondition).toHaveBeenCalledWith({ tenantId, condition: after.condition });
      const recovered = await eventually(async () => {
        const p = await handle.query(statusQuery);
        return p.plan === 'starter' && !p.condition ? p : undefined;
      }, 30_000, 'the plan change retried');
      expect(recovered.lastError).toBeUndefined();
      await eventually(() => Promise.resolve(acts.recordTenantCondition.mock.lastCall?.[0].condition === null), 10_000, 'the recovery mirrored');
      await handle.terminate('test finished');
    });
  });

  it('continues as new when the history grows, keeping its state and its signals', async () => {
    const taskQueue = uniqueTaskQueue('wf-can');
    const acts = mockActivities([]);
    const tenantId = newTenantId();
    await withWorker({ taskQueue, workflowsPath, activities: acts }, async () => {
      const handle = await start(tenantId, taskQueue, { maxHistoryEvents: 40 });
      await waitForStatus(handle, 'active');
      // Each plan change adds events; the run rolls over and the latest run still answers.
      for (const plan of ['pro', 'starter', 'pro', 'enterprise']) {
        await handle.signal(changePlanSignal, { plan });
        await eventually(async () => (await handle.query(statusQuery)).plan === plan, 30_000, `plan ${plan}`);
      }
      const desc = await handle.describe();
      expect(desc.runId).not.toBe(handle.firstExecutionRunId);
      const progress = await handle.query(statusQuery);
      expect(progress).toMatchObject({ status: 'active', plan: 'enterprise', namespace: `tenant-${tenantId}`, completedSteps: [...PROVISION_STEPS] });
      await handle.signal(deprovisionSignal, {});
      expect(await handle.result()).toMatchObject({ status: 'deprovisioned' });
      expect(acts.recordTenant).toHaveBeenCalledTimes(1);
    });
  });
});
