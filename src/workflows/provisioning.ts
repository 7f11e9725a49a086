/**
 * The provisioning sequence: the eight seed steps as a saga. Each step's compensation is
 * registered before the step runs (a step can half-succeed), but only for what this run creates:
 * what existed before it (a live tenant whose earlier run closed) is never undone. A final failure
 * undoes the rest newest first; a tenant that was new is marked `failed` and the run fails with the
 * original failure as its cause, while a tenant that was already live stays live.
 */
import { ApplicationFailure, CancellationScope, log, patched } from '@temporalio/workflow';
import type { ProvisionStep, ProvisionTenantResult, StepFailure } from '../contract';
import { db, describeFailure, formatError, outlast, quick, recordedFirst, slow } from './proxies';
import { Saga } from './saga';
import type { TenantState } from './state';

/** Raised inside the workflow when a deprovision signal stops provisioning between steps. */
class DeprovisionRequested extends Error {}

export type ProvisionOutcome =
  | { outcome: 'active' }
  | { outcome: 'deprovision' }
  /** The run failed, but the tenant was live before it and still is; the lifecycle retries. */
  | { outcome: 'kept-live'; failure: StepFailure };

export async function provision(state: TenantState): Promise<ProvisionOutcome> {
  const { tenantId, input, progress } = state;
  const saga = new Saga<ProvisionStep>();
  let namespace = '';
  let existed: { namespace: boolean; secret: boolean; release: boolean } | undefined;
  const run = async <T>(step: ProvisionStep, action: () => Promise<T>, undo?: () => Promise<unknown>): Promise<T> => {
    if (state.deprovisionDue()) throw new DeprovisionRequested();
    if (undo) saga.add(step, () => outlast(`undo:${step}`, undo));
    state.setStep(step);
    const result = await outlast(step, action);
    progress.completedSteps.push(step);
    return result;
  };

  try {
    await run('recordTenant', () =>
      db.recordTenant({ tenantId, plan: input.plan, userId: input.userId, customerId: input.customerId }),
    );
    namespace = await run('assignNamespace', () => db.assignNamespace({ tenantId }));
    progress.namespace = namespace;
    const ref = { tenantId, namespace };
    // Before anything is created: what is already there is not this run's to undo. Recorded in
    // history before the next step runs (see recordedFirst).
    existed = await outlast('inspectTenant', () => recordedFirst.inspectTenant(ref));
    const isNew = !existed.namespace;
    await run(
      'ensureNamespace',
      () => quick.ensureNamespace({ ...ref, plan: progress.plan }),
      isNew ? () => slow.deleteNamespace(ref) : undefined,
    );
    await run(
      'applyNetworkPolicies',
      () => quick.applyNetworkPolicies({ ...ref, plan: progress.plan }),
      isNew ? () => quick.removeNetworkPolicies(ref) : undefined,
    );
    await run(
      'applyResourceLimits',
      () => quick.applyResourceLimits({ ...ref, plan: progress.plan }),
      isNew ? () => quick.removeResourceLimits(ref) : undefined,
    );
    await run(
      'ensureSecrets',
      () => quick.ensureSecrets({ ...ref, plan: progress.plan }),
      existed.secret ? undefined : () => quick.removeSecrets(ref),
    );
    await run(
      'deployApp',
      () => slow.deployApp({ ...ref, plan: progress.plan, suspended: false }),
      existed.release ? undefined : () => slow.uninstallApp(ref),
    );
    // Active means the app answers through its Service and the tenant is isolated (when the
    // worker checks it). Runs recorded before the check replay without it.
    if (patched('verify-isolation')) {
      if (state.deprovisionDue()) throw new DeprovisionRequested();
      state.setStep('verifyIsolation');
      const isolation = await outlast('verifyIsolation', () => quick.verifyIsolation({ ...ref, plan: progress.plan }));
      if (isolation.status === 'verified') progress.isolation = { status: 'verified', at: isolation.at };
    }
    if (state.deprovisionDue()) throw new DeprovisionRequested();
    await run('markActive', () => db.setTenantStatus({ tenantId, status: 'active', step: 'markActive' }));
    state.setStep(undefined);
    state.setStatus('active');
    return { outcome: 'active' };
  } catch (err) {
    if (err instanceof DeprovisionRequested) return { outcome: 'deprovision' };
    const failure = describeFailure(err, progress.currentStep ?? 'unknown');
    progress.lastError = failure;
    log.warn('provisioning failed; undoing what this run created', { tenantId, step: failure.step, type: failure.type, undo: saga.size });
    const undoFailures = await saga.compensate({
      before: (step) => state.setStep(`undo:${step}`),
      done: (step) => progress.compensatedSteps.push(step),
    });
    progress.compensationErrors.push(...undoFailures.map((f) => describeFailure(f.error, `undo:${f.step}`)));
    if (existed?.namespace && existed.release) {
      // It served before this run and nothing of that was touched: it stays live, and the
      // lifecycle keeps trying to bring it to the wanted state.
      state.setStep(undefined);
      return { outcome: 'kept-live', failure };
    }
    // Like the compensations, recorded even while the workflow is being cancelled.
    await CancellationScope.nonCancellable(() => markFailed(state, failure.step, formatError(failure, progress.compensationErrors)));
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

async function markFailed(state: TenantState, step: string, error: string): Promise<void> {
  state.setStep(undefined);
  state.setStatus('failed');
  await db.setTenantStatus({ tenantId: state.tenantId, status: 'failed', step, error });
}
