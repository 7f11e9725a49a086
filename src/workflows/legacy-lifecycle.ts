/**
 * FROZEN: the lifecycle loop as it ran before the 'lifecycle-v2' patch, kept unchanged so that
 * runs started before it still replay. New runs use lifecycle.ts. Delete this file once no run
 * older than that patch is open.
 *
 * The tenant's lifecycle after provisioning: a loop that waits for the desired state to change
 * (plan, suspension, deprovision deadline) and applies it, re-applies isolation objects
 * periodically, and continues as new before the history grows large.
 */
import { condition, continueAsNew, isCancellation, patched, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES, type ProvisionTenantInput, type ProvisionTenantResult } from '../contract';
import { describeFailure, formatError, quick, slow } from './proxies';
import type { TenantState } from './state';

/** Continue-as-new well before Temporal's history limits; the lifecycle can last for years. */
const DEFAULT_MAX_HISTORY_EVENTS = 2_000;

/** Re-apply a live tenant's isolation objects this often, undoing manual or accidental drift. */
const DEFAULT_RECONCILE_SECONDS = 6 * 60 * 60;

/** Uninstalls the app, deletes the namespace and waits until it is gone, marks `deprovisioned`. */
async function deprovision(state: TenantState): Promise<ProvisionTenantResult> {
  const { tenantId, input, progress } = state;
  if (!progress.completedSteps.includes('recordTenant')) {
    // Cancelled before anything was recorded: record it anyway, so the row tells what happened.
    await quick.recordTenant({ tenantId, plan: progress.plan, userId: input.userId, customerId: input.customerId });
  }
  state.setStatus('deprovisioning');
  await quick.setTenantStatus({ tenantId, status: 'deprovisioning', step: 'deprovision', error: state.deprovisionReason });
  const namespace = progress.namespace ?? (await quick.assignNamespace({ tenantId }));
  state.setStep('uninstallApp');
  await slow.uninstallApp({ tenantId, namespace });
  state.setStep('deleteNamespace');
  await slow.deleteNamespace({ tenantId, namespace });
  state.setStep(undefined);
  state.setStatus('deprovisioned');
  await quick.setTenantStatus({ tenantId, status: 'deprovisioned', step: 'deprovision' });
  return { tenantId, status: 'deprovisioned', namespace };
}

type TenantWorkflow = (input: ProvisionTenantInput) => Promise<ProvisionTenantResult>;

export async function legacyLifecycle(state: TenantState, input: ProvisionTenantInput): Promise<ProvisionTenantResult> {
  const { tenantId, progress } = state;

  /** Runs a lifecycle change; a final failure is reported but leaves the tenant as it was. */
  async function lifecycleStep(step: string, action: () => Promise<unknown>): Promise<boolean> {
    state.setStep(step);
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
      state.setStep(undefined);
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
   * nothing drifted) and a deleted credentials Secret is recreated.
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
    if (ok) state.setStatus(suspend ? 'suspended' : 'active');
  }

  const maxEvents = input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
  let mirroredDeadline: number | undefined;
  const reconcileMs = Math.max(1, input.reconcileIntervalSeconds ?? DEFAULT_RECONCILE_SECONDS) * 1000;
  let nextReconcileAt = Date.now() + reconcileMs;
  for (;;) {
    const historyTooLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > maxEvents;
    state.deprovisionChanged = false;
    const wake = () => state.deprovisionChanged || state.deprovisionDue() || state.pendingPlan !== undefined || state.suspensionChange() || historyTooLong();
    if (state.deprovisionRequested && !state.deprovisionDue()) {
      // Runs recorded before the deadline was mirrored replay without this call.
      if (mirroredDeadline !== state.deprovisionNotBefore && patched('mirror-deprovision-deadline')) {
        await quick.recordDeprovisionDeadline({ tenantId, deprovisionAt: new Date(state.deprovisionNotBefore!).toISOString() });
        mirroredDeadline = state.deprovisionNotBefore;
        continue; // the signal may have moved the deadline while the activity ran
      }
      // Grace period: sleep until the deadline, unless something else needs doing first.
      await condition(wake, Math.max(1, state.deprovisionNotBefore! - Date.now()));
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
    if (state.deprovisionDue()) return deprovision(state);
    if (state.pendingPlan !== undefined) {
      const plan = state.pendingPlan;
      state.pendingPlan = undefined;
      if (plan !== progress.plan) await applyPlan(plan);
      continue;
    }
    if (state.suspensionChange()) {
      await applySuspension(state.wantSuspended!);
      continue;
    }
    if (!historyTooLong()) continue; // woken by a new deprovision deadline, or the grace timer
    await continueAsNew<TenantWorkflow>({ ...input, carried: state.carry() });
  }
}
