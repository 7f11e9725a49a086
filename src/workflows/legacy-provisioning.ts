/**
 * FROZEN: the provisioning sequence as it ran before the 'lifecycle-v2' patch, kept unchanged so
 * that runs started before it still replay. New runs use provisioning.ts. Delete this file once no
 * run older than that patch is open (`TemporalChangeVersion` lacks 'lifecycle-v2').
 *
 * The provisioning sequence: the eight seed steps as a saga. Each step's compensation is
 * registered before the step runs (a step can half-succeed); a final failure undoes them newest
 * first, marks the tenant `failed` and fails the run with the original failure as its cause.
 */
import { ApplicationFailure, CancellationScope, log } from '@temporalio/workflow';
import type { ProvisionStep, ProvisionTenantResult } from '../contract';
import { describeFailure, formatError, quick, slow } from './proxies';
import { Saga } from './saga';
import type { TenantState } from './state';

/** Raised inside the workflow when a deprovision signal stops provisioning between steps. */
class DeprovisionRequested extends Error {}

export async function legacyProvision(state: TenantState): Promise<'active' | 'deprovision'> {
  const { tenantId, input, progress } = state;
  const saga = new Saga<ProvisionStep>();
  let namespace = '';
  const run = async <T>(step: ProvisionStep, action: () => Promise<T>, undo?: () => Promise<unknown>): Promise<T> => {
    if (state.deprovisionDue()) throw new DeprovisionRequested();
    if (undo) saga.add(step, undo);
    state.setStep(step);
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
    if (state.deprovisionDue()) throw new DeprovisionRequested();
    await run('markActive', () => quick.setTenantStatus({ tenantId, status: 'active', step: 'markActive' }));
    state.setStep(undefined);
    state.setStatus('active');
    return 'active';
  } catch (err) {
    if (err instanceof DeprovisionRequested) return 'deprovision';
    const failure = describeFailure(err, progress.currentStep ?? 'unknown');
    progress.lastError = failure;
    log.warn('provisioning failed; undoing completed steps', { tenantId, step: failure.step, type: failure.type });
    const undoFailures = await saga.compensate({
      before: (step) => state.setStep(`undo:${step}`),
      done: (step) => progress.compensatedSteps.push(step),
    });
    progress.compensationErrors.push(...undoFailures.map((f) => describeFailure(f.error, `undo:${f.step}`)));
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
  await quick.setTenantStatus({ tenantId: state.tenantId, status: 'failed', step, error });
}
