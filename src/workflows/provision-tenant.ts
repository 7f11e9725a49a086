/**
 * ProvisionTenant: one workflow per tenant (id `tenant-<uuid>`), from the paid event to the end of
 * the tenant's life. It provisions the nine seed steps as a saga, then stays alive as the tenant's
 * lifecycle and answers deprovision, plan change, suspend and resume signals.
 *
 * Deterministic by construction: no I/O here, only activities (imported as types), timers and
 * signals. Every side effect is an idempotent activity, so a replayed or retried step is harmless.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  PROVISION_STEPS,
  SEARCH_ATTRIBUTES,
  changePlanSignal,
  deprovisionSignal,
  resumeSignal,
  statusQuery,
  suspendSignal,
  type CarriedState,
  type ProvisionStep,
  type ProvisionTenantInput,
  type ProvisionTenantResult,
  type StepFailure,
  type TenantProgress,
  type TenantStatus,
} from '../contract';

/** Failures that retrying cannot fix: the activity said so, or the input is wrong. */
const NON_RETRYABLE = [
  'UnknownPlan',
  'InvalidTenant',
  'NamespaceConflict',
  'KubernetesRejected',
  'KubernetesForbidden',
  'KubernetesConflict',
  'HelmRejected',
];

const RETRY = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '30 seconds',
  maximumAttempts: 6,
  nonRetryableErrorTypes: NON_RETRYABLE,
};

const quick = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: RETRY });

// Helm waits for readiness (HELM_TIMEOUT_SECONDS, at most 10 minutes) and namespaces take a while
// to drain; both heartbeat, so a dead worker is noticed within the heartbeat timeout.
const slow = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { ...RETRY, maximumAttempts: 3 },
});

/** Continue-as-new well before Temporal's history limits; the lifecycle can last for years. */
const DEFAULT_MAX_HISTORY_EVENTS = 2_000;

/** Re-apply a live tenant's isolation objects this often, undoing manual or accidental drift. */
const DEFAULT_RECONCILE_SECONDS = 6 * 60 * 60;

interface Compensation {
  step: ProvisionStep;
  undo: () => Promise<unknown>;
}

/** Raised inside the workflow when a deprovision signal stops provisioning between steps. */
class DeprovisionRequested extends Error {}

export async function provisionTenant(input: ProvisionTenantInput): Promise<ProvisionTenantResult> {
  const { tenantId } = input;
  const now = () => new Date().toISOString();
  const carried = input.carried;
  const progress: TenantProgress = {
    tenantId,
    status: carried?.status ?? 'provisioning',
    plan: carried?.plan ?? input.plan,
    namespace: carried?.namespace,
    completedSteps: carried?.completedSteps ?? [],
    compensatedSteps: [],
    compensationErrors: [],
    startedAt: carried?.startedAt ?? now(),
    updatedAt: now(),
    ...(carried?.deprovisionNotBefore ? { deprovisionAt: new Date(carried.deprovisionNotBefore).toISOString() } : {}),
  };
  let deprovisionRequested = carried?.deprovisionRequested ?? false;
  let deprovisionReason = carried?.deprovisionReason;
  let deprovisionNotBefore = carried?.deprovisionNotBefore;
  /** Set by the deprovision signal so the lifecycle loop re-reads the deadline. */
  let deprovisionChanged = false;
  const deprovisionDue = () => deprovisionRequested && Date.now() >= (deprovisionNotBefore ?? 0);
  let pendingPlan = carried?.pendingPlan;
  let wantSuspended = carried?.pendingSuspend;

  setHandler(statusQuery, () => progress);
  setHandler(deprovisionSignal, (req) => {
    deprovisionRequested = true;
    deprovisionReason = req?.reason ?? deprovisionReason;
    // An earlier deadline wins: an immediate request overrides a pending grace period.
    const notBefore = Date.now() + Math.max(0, req?.graceSeconds ?? 0) * 1000;
    deprovisionNotBefore = Math.min(deprovisionNotBefore ?? notBefore, notBefore);
    deprovisionChanged = true;
    progress.deprovisionAt = new Date(deprovisionNotBefore).toISOString();
  });
  setHandler(changePlanSignal, (req) => {
    pendingPlan = req.plan;
  });
  setHandler(suspendSignal, () => {
    wantSuspended = true;
  });
  setHandler(resumeSignal, () => {
    wantSuspended = false;
  });

  const setStatus = (status: TenantStatus) => {
    progress.status = status;
    progress.updatedAt = now();
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: status }]);
    setCurrentDetails(describe(progress));
  };
  const setStep = (step: string | undefined) => {
    progress.currentStep = step;
    progress.updatedAt = now();
    setCurrentDetails(describe(progress));
  };

  // --- provisioning (saga) ----------------------------------------------------------------------

  async function provision(): Promise<'active' | 'deprovision'> {
    const compensations: Compensation[] = [];
    let namespace = '';
    const run = async <T>(step: ProvisionStep, action: () => Promise<T>, undo?: () => Promise<unknown>): Promise<T> => {
      if (deprovisionDue()) throw new DeprovisionRequested();
      // Registered before the step runs: a step can half-succeed (say, a namespace created but
      // its labels never confirmed) and then fail, and its undo must still run.
      if (undo) compensations.unshift({ step, undo });
      setStep(step);
      const result = await action();
      progress.completedSteps.push(step);
      return result;
    };

    try {
      await run('recordTenant', () =>
        quick.recordTenant({ tenantId, plan: input.plan, userId: input.userId, customerId: input.customerId }),
      );
      namespace = await run('assignNamespace', () => quick.assignNamespace({ tenantId }));
      progress.namespace = namespace;
      const ref = { tenantId, namespace };
      await run(
        'ensureNamespace',
        () => quick.ensureNamespace({ ...ref, plan: progress.plan }),
        () => slow.deleteNamespace(ref),
      );
      await run(
        'applyNetworkPolicies',
        () => quick.applyNetworkPolicies({ ...ref, plan: progress.plan }),
        () => quick.removeNetworkPolicies(ref),
      );
      await run(
        'applyResourceLimits',
        () => quick.applyResourceLimits({ ...ref, plan: progress.plan }),
        () => quick.removeResourceLimits(ref),
      );
      await run('ensureSecrets', () => quick.ensureSecrets({ ...ref, plan: progress.plan }), () => quick.removeSecrets(ref));
      await run('deployApp', () => slow.deployApp({ ...ref, plan: progress.plan, suspended: false }), () => slow.uninstallApp(ref));
      if (deprovisionDue()) throw new DeprovisionRequested();
      await run('markActive', () => quick.setTenantStatus({ tenantId, status: 'active', step: 'markActive' }));
      setStep(undefined);
      setStatus('active');
      return 'active';
    } catch (err) {
      if (err instanceof DeprovisionRequested) return 'deprovision';
      const failure = describeFailure(err, progress.currentStep ?? 'unknown');
      progress.lastError = failure;
      log.warn('provisioning failed; undoing completed steps', { tenantId, step: failure.step, type: failure.type });
      // Compensations must run even when the workflow itself is being cancelled.
      await CancellationScope.nonCancellable(async () => {
        for (const c of compensations) {
          setStep(`undo:${c.step}`);
          try {
            await c.undo();
            progress.compensatedSteps.push(c.step);
          } catch (undoErr) {
            progress.compensationErrors.push(describeFailure(undoErr, `undo:${c.step}`));
          }
        }
        setStep(undefined);
        setStatus('failed');
        await quick.setTenantStatus({
          tenantId,
          status: 'failed',
          step: failure.step,
          error: formatError(failure, progress.compensationErrors),
        });
      });
      const result: ProvisionTenantResult = {
        tenantId,
        status: 'failed',
        namespace: namespace || undefined,
        error: failure,
        ...(progress.compensationErrors.length ? { compensationErrors: progress.compensationErrors } : {}),
      };
      // The run fails (red in the Web UI, ExecutionStatus="Failed" in searches) with the original
      // failure as its cause; the result rides along in the details for callers.
      throw ApplicationFailure.create({
        message: formatError(failure, progress.compensationErrors),
        type: 'ProvisioningFailed',
        nonRetryable: true,
        details: [result],
        cause: err instanceof Error ? err : undefined,
      });
    }
  }

  // --- lifecycle --------------------------------------------------------------------------------

  async function deprovision(): Promise<ProvisionTenantResult> {
    if (!progress.completedSteps.includes('recordTenant')) {
      // Cancelled before anything was recorded: record it anyway, so the row tells what happened.
      await quick.recordTenant({ tenantId, plan: progress.plan, userId: input.userId, customerId: input.customerId });
    }
    setStatus('deprovisioning');
    await quick.setTenantStatus({ tenantId, status: 'deprovisioning', step: 'deprovision', error: deprovisionReason });
    const namespace = progress.namespace ?? (await quick.assignNamespace({ tenantId }));
    setStep('uninstallApp');
    await slow.uninstallApp({ tenantId, namespace });
    setStep('deleteNamespace');
    await slow.deleteNamespace({ tenantId, namespace });
    setStep(undefined);
    setStatus('deprovisioned');
    await quick.setTenantStatus({ tenantId, status: 'deprovisioned', step: 'deprovision' });
    return { tenantId, status: 'deprovisioned', namespace };
  }

  /** Runs a lifecycle change; a final failure is reported but leaves the tenant as it was. */
  async function lifecycleStep(step: string, action: () => Promise<unknown>): Promise<boolean> {
    setStep(step);
    try {
      await action();
      progress.lastError = undefined;
      return true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      progress.lastError = describeFailure(err, step);
      await quick.recordTenantError({ tenantId, step, error: formatError(progress.lastError, []) });
      return false;
    } finally {
      setStep(undefined);
    }
  }

  async function applyPlan(plan: string): Promise<void> {
    const ref = { tenantId, namespace: progress.namespace! };
    const ok = await lifecycleStep('changePlan', async () => {
      await quick.ensureNamespace({ ...ref, plan });
      await quick.applyResourceLimits({ ...ref, plan });
      await slow.deployApp({ ...ref, plan, suspended: progress.status === 'suspended' });
      await quick.setTenantPlan({ tenantId, plan });
    });
    if (ok) {
      progress.plan = plan;
      upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.plan, value: plan }]);
    }
  }

  /**
   * Drift correction, the way an operator's reconcile loop would: namespace labels, network
   * policies, quota and limit range are applied again (server-side apply changes nothing when
   * nothing drifted) and a deleted credentials Secret is recreated. The app's release is the
   * tenant's own and is left alone.
   */
  async function reconcile(): Promise<void> {
    const ref = { tenantId, namespace: progress.namespace!, plan: progress.plan };
    await lifecycleStep('reconcile', async () => {
      await quick.ensureNamespace(ref);
      await quick.applyNetworkPolicies(ref);
      await quick.applyResourceLimits(ref);
      await quick.ensureSecrets(ref);
    });
  }

  async function applySuspension(suspend: boolean): Promise<void> {
    const ref = { tenantId, namespace: progress.namespace!, plan: progress.plan };
    const ok = await lifecycleStep(suspend ? 'suspend' : 'resume', async () => {
      await slow.deployApp({ ...ref, suspended: suspend });
      await quick.setTenantStatus({ tenantId, status: suspend ? 'suspended' : 'active', step: suspend ? 'suspend' : 'resume' });
    });
    if (ok) setStatus(suspend ? 'suspended' : 'active');
  }

  if (!carried) {
    // Whoever started the workflow, the Web UI can find it by tenant, plan and customer.
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.tenantId, value: tenantId },
      { key: SEARCH_ATTRIBUTES.plan, value: input.plan },
      ...(input.customerId ? [{ key: SEARCH_ATTRIBUTES.customerId, value: input.customerId }] : []),
      { key: SEARCH_ATTRIBUTES.status, value: 'provisioning' },
    ]);
    setCurrentDetails(describe(progress));
    await provision();
  }

  const maxEvents = input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
  let mirroredDeadline: number | undefined;
  const reconcileMs = Math.max(1, input.reconcileIntervalSeconds ?? DEFAULT_RECONCILE_SECONDS) * 1000;
  let nextReconcileAt = Date.now() + reconcileMs;
  for (;;) {
    const suspensionChange = () => wantSuspended !== undefined && wantSuspended !== (progress.status === 'suspended');
    const historyTooLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > maxEvents;
    deprovisionChanged = false;
    const wake = () => deprovisionChanged || deprovisionDue() || pendingPlan !== undefined || suspensionChange() || historyTooLong();
    if (deprovisionRequested && !deprovisionDue()) {
      // Runs recorded before the deadline was mirrored replay without this call.
      if (mirroredDeadline !== deprovisionNotBefore && patched('mirror-deprovision-deadline')) {
        await quick.recordDeprovisionDeadline({ tenantId, deprovisionAt: new Date(deprovisionNotBefore!).toISOString() });
        mirroredDeadline = deprovisionNotBefore;
        continue; // the signal may have moved the deadline while the activity ran
      }
      // Grace period: sleep until the deadline, unless something else needs doing first.
      await condition(wake, Math.max(1, deprovisionNotBefore! - Date.now()));
    } else if ((progress.status === 'active' || progress.status === 'suspended') && patched('periodic-reconcile')) {
      // Runs recorded before periodic reconciliation replay without its timer.
      const woken = await condition(wake, Math.max(1, nextReconcileAt - Date.now()));
      if (!woken) {
        await reconcile();
        nextReconcileAt = Date.now() + reconcileMs;
        continue;
      }
    } else {
      await condition(wake);
    }
    if (deprovisionDue()) return deprovision();
    if (pendingPlan !== undefined) {
      const plan = pendingPlan;
      pendingPlan = undefined;
      if (plan !== progress.plan) await applyPlan(plan);
      continue;
    }
    if (suspensionChange()) {
      await applySuspension(wantSuspended!);
      continue;
    }
    if (!historyTooLong()) continue; // woken by a new deprovision deadline, or the grace timer
    const next: CarriedState = {
      namespace: progress.namespace!,
      status: progress.status,
      plan: progress.plan,
      completedSteps: progress.completedSteps,
      startedAt: progress.startedAt,
      pendingPlan,
      pendingSuspend: wantSuspended,
      deprovisionRequested,
      deprovisionReason,
      deprovisionNotBefore,
    };
    await continueAsNew<typeof provisionTenant>({ ...input, carried: next });
  }
}

function describe(p: TenantProgress): string {
  const done = `${p.completedSteps.length}/${PROVISION_STEPS.length} steps`;
  const step = p.currentStep ? `, running ${p.currentStep}` : '';
  const err = p.lastError ? `, last error in ${p.lastError.step}: ${p.lastError.message}` : '';
  return `**${p.status}** · plan ${p.plan}${p.namespace ? ` · namespace ${p.namespace}` : ''} · ${done}${step}${err}`;
}

/** The innermost cause of an activity failure: that is the message a person can act on. */
function describeFailure(err: unknown, step: string): StepFailure {
  let cause: unknown = err;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure) return { step, message: cause.message, type: cause.type ?? undefined };
  if (cause instanceof Error) return { step, message: cause.message, type: cause.name };
  return { step, message: String(cause) };
}

function formatError(failure: StepFailure, compensationErrors: StepFailure[]): string {
  const undo = compensationErrors.length
    ? `; cleanup also failed: ${compensationErrors.map((e) => `${e.step}: ${e.message}`).join('; ')}`
    : '';
  return `${failure.step} failed: ${failure.message}${undo}`;
}
