/**
 * The tenant's lifecycle after provisioning: a loop that drives the tenant toward its desired
 * state (plan, suspension, deprovision deadline, set by signals), re-applies its isolation
 * objects and app periodically, and continues as new before the history grows large.
 *
 * A change that fails is not dropped and does not spin: it becomes the tenant's condition (status
 * query, PostgreSQL, search attribute, metric) and is tried again with capped exponential backoff
 * until it succeeds or the desired state changes. Every path through the loop passes the
 * continue-as-new check at its top.
 */
import { condition, continueAsNew, isCancellation, metricMeter, patched, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES, type ProvisionTenantInput, type ProvisionTenantResult, type StepFailure, type TenantCondition } from '../contract';
import { RETIRED, retired } from './patches';
import { db, describeFailure, outlast, quick, slow } from './proxies';
import type { TenantState } from './state';

/** Continue-as-new well before Temporal's history limits; the lifecycle can last for years. */
const DEFAULT_MAX_HISTORY_EVENTS = 2_000;

/** Re-apply a live tenant's isolation objects and app this often, undoing manual or accidental drift. */
const DEFAULT_RECONCILE_SECONDS = 6 * 60 * 60;

const DEFAULT_BACKOFF_INITIAL_SECONDS = 30;
const DEFAULT_BACKOFF_MAX_SECONDS = 60 * 60;

const changeFailures = metricMeter.createCounter(
  'tenant_lifecycle_change_failures',
  'attempts',
  'Failed attempts of tenant lifecycle changes (plan change, suspend, resume, reconcile, deprovision); each is retried with backoff',
);

type TenantWorkflow = (input: ProvisionTenantInput) => Promise<ProvisionTenantResult>;

/** One change toward the desired state; `target` names that state, so a new one is tried at once. */
interface Change {
  step: string;
  target: string;
  apply: () => Promise<void>;
}

export class Lifecycle {
  private readonly maxEvents: number;
  private readonly reconcileMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private nextReconcileAt: number;
  private mirroredDeadline: number | undefined;

  constructor(
    private readonly state: TenantState,
    private readonly input: ProvisionTenantInput,
  ) {
    this.maxEvents = input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
    this.reconcileMs = Math.max(1, input.reconcileIntervalSeconds ?? DEFAULT_RECONCILE_SECONDS) * 1000;
    this.initialBackoffMs = Math.max(1, input.lifecycleBackoff?.initialSeconds ?? DEFAULT_BACKOFF_INITIAL_SECONDS) * 1000;
    this.maxBackoffMs = Math.max(this.initialBackoffMs, (input.lifecycleBackoff?.maxSeconds ?? DEFAULT_BACKOFF_MAX_SECONDS) * 1000);
    this.nextReconcileAt = Date.now() + this.reconcileMs;
    // A continued run inherits an already mirrored deadline.
    this.mirroredDeadline = input.carried?.deprovisionRequested ? input.carried.deprovisionNotBefore : undefined;
  }

  private historyTooLong(): boolean {
    return workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > this.maxEvents;
  }

  private async continueAsNew(): Promise<never> {
    return continueAsNew<TenantWorkflow>({ ...this.input, carried: this.state.carry() });
  }

  async run(): Promise<ProvisionTenantResult> {
    const { state } = this;
    for (;;) {
      if (this.historyTooLong()) await this.continueAsNew();
      if (state.deprovisionDue()) return this.teardown();
      const deadline = state.deprovisionRequested ? state.deprovisionNotBefore : undefined;
      if (deadline !== this.mirroredDeadline) {
        await db.recordDeprovisionDeadline({ tenantId: state.tenantId, deprovisionAt: deadline === undefined ? null : new Date(deadline).toISOString() });
        this.mirroredDeadline = deadline;
        continue; // a signal may have moved the deadline while the activity ran
      }
      const change = this.wantedChange();
      const retryAt = change ? this.retryAt(change) : Infinity;
      if (change && Date.now() >= retryAt) {
        await this.attempt(change);
        continue;
      }
      // Nothing to do now: sleep until a deadline, a retry or the next reconciliation is due,
      // or a signal changes the desired state.
      const live = state.progress.status === 'active' || state.progress.status === 'suspended';
      const wakeAt = Math.min(deadline ?? Infinity, retryAt, live ? this.nextReconcileAt : Infinity);
      state.desiredChanged = false;
      const wake = () => state.desiredChanged || this.historyTooLong();
      if (wakeAt === Infinity) await condition(wake);
      else await condition(wake, Math.max(1, wakeAt - Date.now()));
    }
  }

  /** The next change toward the desired state: plan first, then suspension, then drift correction. */
  private wantedChange(): Change | undefined {
    const { state } = this;
    const { progress } = state;
    if (state.pendingPlan !== undefined && state.pendingPlan === progress.plan) state.pendingPlan = undefined;
    if (state.pendingPlan !== undefined) {
      const plan = state.pendingPlan;
      return { step: 'changePlan', target: `changePlan:${plan}`, apply: () => this.changePlan(plan) };
    }
    if (state.suspensionChange()) {
      const suspend = state.wantSuspended!;
      const step = suspend ? 'suspend' : 'resume';
      return { step, target: step, apply: () => this.applySuspension(suspend) };
    }
    const live = progress.status === 'active' || progress.status === 'suspended';
    if (live && (Date.now() >= this.nextReconcileAt || state.conditionTarget === 'reconcile')) {
      return { step: 'reconcile', target: 'reconcile', apply: () => this.reconcile() };
    }
    return undefined;
  }

  /** When `change` may run: now, unless it is the one failing and its backoff has not passed. */
  private retryAt(change: Change): number {
    const c = this.state.condition;
    return c && this.state.conditionTarget === change.target ? Date.parse(c.nextAttemptAt) : 0;
  }

  private backoffMs(attempts: number): number {
    return Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** Math.min(30, attempts - 1));
  }

  /** Runs a change; a failure becomes the tenant's condition, with the time of the next attempt. */
  private async attempt(change: Change): Promise<boolean> {
    const { state } = this;
    state.setStep(change.step);
    try {
      // A change that failed may have failed on drift (a namespace deleted by hand, a missing
      // policy): its retry first puts the isolation objects back.
      const retrying = !!state.condition && state.conditionTarget === change.target && change.step !== 'reconcile';
      if (retrying) {
        retired(RETIRED.healBeforeRetry);
        await this.restoreIsolation();
      }
      await change.apply();
      state.progress.lastError = undefined;
      await this.clearCondition();
      return true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      await this.recordFailure(change, err);
      return false;
    } finally {
      state.setStep(undefined);
    }
  }

  /**
   * A provisioning run failed on a tenant that was live before it: it stays active, and
   * reconciliation retries, with backoff, what that run could not do.
   */
  async keptLive(failure: StepFailure): Promise<void> {
    const { state } = this;
    state.setStatus('active');
    await db.setTenantStatus({ tenantId: state.tenantId, status: 'active', step: 'markActive' });
    await this.recordFailure({ step: 'reconcile', target: 'reconcile' }, { ...failure, message: `${failure.step} failed: ${failure.message}` });
  }

  /** A change went through: the tenant no longer shows a failing one. */
  private async clearCondition(): Promise<void> {
    const { state } = this;
    if (!state.condition) return;
    state.setCondition(undefined);
    await db.recordTenantCondition({ tenantId: state.tenantId, condition: null });
  }

  private async recordFailure(change: { step: string; target: string }, err: unknown): Promise<void> {
    const { state } = this;
    const failure = isStepFailure(err) ? err : describeFailure(err, change.step);
    state.progress.lastError = failure;
    const previous = state.conditionTarget === change.target ? state.condition : undefined;
    const attempts = (previous?.attempts ?? 0) + 1;
    const now = Date.now();
    const condition: TenantCondition = {
      type: 'ChangeFailing',
      step: change.step,
      message: failure.message,
      attempts,
      since: previous?.since ?? new Date(now).toISOString(),
      nextAttemptAt: new Date(now + this.backoffMs(attempts)).toISOString(),
    };
    state.setCondition(condition, change.target);
    changeFailures.add(1, { step: change.step });
    await db.recordTenantCondition({ tenantId: state.tenantId, condition });
  }

  private async changePlan(plan: string): Promise<void> {
    const { state } = this;
    const { tenantId, progress } = state;
    const ref = { tenantId, namespace: progress.namespace! };
    const app = () => outlast('changePlan', () => slow.deployApp({ ...ref, plan, suspended: progress.status === 'suspended' }));
    const limits = async () => {
      await outlast('changePlan', () => quick.ensureNamespace({ ...ref, plan }));
      await outlast('changePlan', () => quick.applyResourceLimits({ ...ref, plan }));
      // The plan says what the tenant may reach (egress); runs recorded before replay without it.
      if (patched('plan-network-policies')) await outlast('changePlan', () => quick.applyNetworkPolicies({ ...ref, plan }));
    };
    // A downgrade shrinks the app before lowering the quota it must fit in; an upgrade the reverse.
    const order = await quick.planChangeOrder({ from: progress.plan, to: plan });
    if (order === 'app-first') {
      await app();
      await limits();
    } else {
      await limits();
      await app();
    }
    await db.setTenantPlan({ tenantId, plan });
    progress.plan = plan;
    if (state.pendingPlan === plan) state.pendingPlan = undefined;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.plan, value: plan }]);
  }

  private async applySuspension(suspend: boolean): Promise<void> {
    const { state } = this;
    const { tenantId, progress } = state;
    const ref = { tenantId, namespace: progress.namespace!, plan: progress.plan };
    await outlast(suspend ? 'suspend' : 'resume', () => slow.deployApp({ ...ref, suspended: suspend }));
    await db.setTenantStatus({ tenantId, status: suspend ? 'suspended' : 'active', step: suspend ? 'suspend' : 'resume' });
    state.setStatus(suspend ? 'suspended' : 'active');
  }

  /**
   * Drift correction, the way an operator's reconcile loop would: namespace labels, network
   * policies, quota and limit range are applied again (server-side apply changes nothing when
   * nothing drifted), a deleted credentials Secret is recreated, and a missing or drifted release
   * is reinstalled, and the tenant's isolation is checked by traffic again.
   */
  private async reconcile(): Promise<void> {
    const { tenantId, progress } = this.state;
    await this.restoreIsolation();
    const ref = { tenantId, namespace: progress.namespace!, plan: progress.plan };
    await outlast('reconcile', () => slow.reconcileApp({ ...ref, suspended: progress.status === 'suspended' }));
    // Isolation is checked by traffic again, as after deployApp (a suspended tenant runs no pod to
    // probe from): a failure fails the reconcile, so it shows as the tenant's condition until it
    // passes. Runs recorded before replay without it.
    if (progress.status === 'active' && patched('reconcile-verify-isolation')) {
      const isolation = await outlast('reconcile', () => quick.verifyIsolation(ref));
      if (isolation.status === 'verified') progress.isolation = { status: 'verified', at: isolation.at };
    }
    this.nextReconcileAt = Date.now() + this.reconcileMs;
  }

  /** Namespace (with its labels), network policies, quota, limit range and credentials, as the plan wants them. */
  private async restoreIsolation(): Promise<void> {
    const { tenantId, progress } = this.state;
    const ref = { tenantId, namespace: progress.namespace!, plan: progress.plan };
    await outlast('reconcile', () => quick.ensureNamespace(ref));
    await outlast('reconcile', () => quick.applyNetworkPolicies(ref));
    await outlast('reconcile', () => quick.applyResourceLimits(ref));
    await outlast('reconcile', () => quick.ensureSecrets(ref));
  }

  /**
   * Uninstalls the app, deletes the namespace and waits until it is gone, marks `deprovisioned`.
   * A cleanup run (after a failed or terminated one) removes every namespace labelled as the
   * tenant's. A step that fails is retried with backoff, shown as the condition, until it works.
   */
  private async teardown(): Promise<ProvisionTenantResult> {
    const { state, input } = this;
    const { tenantId, progress } = state;
    if (!progress.completedSteps.includes('recordTenant') && !input.cleanup) {
      // Cancelled before anything was recorded: record it anyway, so the row tells what happened.
      await db.recordTenant({ tenantId, plan: progress.plan, userId: input.userId, customerId: input.customerId });
    }
    if (progress.status !== 'deprovisioning') {
      state.setStatus('deprovisioning');
      await db.setTenantStatus({ tenantId, status: 'deprovisioning', step: 'deprovision', error: state.deprovisionReason });
    }
    const namespace = progress.namespace ?? (await db.assignNamespace({ tenantId }));
    progress.namespace = namespace;
    let namespaces = [namespace];
    if (input.cleanup) {
      const found = await this.untilDone('findTenantNamespaces', () => quick.findTenantNamespaces({ tenantId }));
      namespaces = [...new Set([namespace, ...found])];
    }
    for (const ns of namespaces) {
      await this.untilDone('deprovision', async () => {
        state.setStep('uninstallApp');
        await outlast('uninstallApp', () => slow.uninstallApp({ tenantId, namespace: ns }));
        state.setStep('deleteNamespace');
        await outlast('deleteNamespace', () => slow.deleteNamespace({ tenantId, namespace: ns }));
      });
    }
    state.setStep(undefined);
    state.setStatus('deprovisioned');
    await db.setTenantStatus({ tenantId, status: 'deprovisioned', step: 'deprovision' });
    return { tenantId, status: 'deprovisioned', namespace };
  }

  /** Teardown cannot be abandoned: a failing step waits out its backoff and runs again. */
  private async untilDone<T>(step: string, action: () => Promise<T>): Promise<T> {
    const { state } = this;
    const change = { step, target: step };
    for (;;) {
      try {
        const result = await action();
        await this.clearCondition();
        return result;
      } catch (err) {
        if (isCancellation(err)) throw err;
        await this.recordFailure(change, err);
        await sleep(Math.max(1, Date.parse(state.condition!.nextAttemptAt) - Date.now()));
        // A continued run starts teardown over; every step of it is idempotent.
        if (this.historyTooLong()) await this.continueAsNew();
      }
    }
  }
}

function isStepFailure(v: unknown): v is StepFailure {
  return !!v && typeof v === 'object' && !(v instanceof Error) && typeof (v as StepFailure).step === 'string' && typeof (v as StepFailure).message === 'string';
}
