/**
 * What one tenant's workflow knows: its progress (answered by the `status` query) and the desired
 * state that signals set (plan, suspension, deprovision deadline). Provisioning and the lifecycle
 * loop share one instance; continue-as-new carries it over as `CarriedState`.
 */
import { setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import {
  PROVISION_STEPS,
  CONDITION_READY,
  SEARCH_ATTRIBUTES,
  cancelDeprovisionSignal,
  changePlanSignal,
  deprovisionSignal,
  resumeSignal,
  statusQuery,
  suspendSignal,
  type CarriedState,
  type ProvisionTenantInput,
  type TenantCondition,
  type TenantProgress,
  type TenantStatus,
} from '../contract';

export class TenantState {
  readonly tenantId: string;
  readonly progress: TenantProgress;
  deprovisionRequested: boolean;
  deprovisionReason: string | undefined;
  deprovisionNotBefore: number | undefined;
  pendingPlan: string | undefined;
  wantSuspended: boolean | undefined;
  /** Set by every signal that changes the desired state; the lifecycle loop wakes on it. */
  desiredChanged = false;
  /** A failing lifecycle change, and which desired state it was trying to reach. */
  condition: TenantCondition | undefined;
  conditionTarget: string | undefined;

  constructor(readonly input: ProvisionTenantInput) {
    const carried = input.carried;
    this.tenantId = input.tenantId;
    const now = new Date().toISOString();
    this.progress = {
      tenantId: input.tenantId,
      status: carried?.status ?? 'provisioning',
      plan: carried?.plan ?? input.plan,
      namespace: carried?.namespace,
      completedSteps: carried?.completedSteps ?? [],
      compensatedSteps: [],
      compensationErrors: [],
      startedAt: carried?.startedAt ?? now,
      updatedAt: now,
      ...(carried?.deprovisionNotBefore ? { deprovisionAt: new Date(carried.deprovisionNotBefore).toISOString() } : {}),
    };
    this.deprovisionRequested = carried?.deprovisionRequested ?? false;
    this.deprovisionReason = carried?.deprovisionReason;
    this.deprovisionNotBefore = carried?.deprovisionNotBefore;
    this.pendingPlan = carried?.pendingPlan;
    this.wantSuspended = carried?.pendingSuspend;
    this.condition = carried?.condition;
    this.conditionTarget = carried?.conditionTarget;
    if (this.condition) this.progress.condition = this.condition;
  }

  /** Registers the status query and the signals that set the desired state. */
  listen(): void {
    setHandler(statusQuery, () => this.progress);
    setHandler(deprovisionSignal, (req) => {
      this.deprovisionRequested = true;
      this.deprovisionReason = req?.reason ?? this.deprovisionReason;
      // An earlier deadline wins: an immediate request overrides a pending grace period.
      const notBefore = Date.now() + Math.max(0, req?.graceSeconds ?? 0) * 1000;
      this.deprovisionNotBefore = Math.min(this.deprovisionNotBefore ?? notBefore, notBefore);
      this.desiredChanged = true;
      this.progress.deprovisionAt = new Date(this.deprovisionNotBefore).toISOString();
    });
    setHandler(cancelDeprovisionSignal, () => {
      // Too late once teardown has started: a half-deleted tenant is not brought back this way.
      if (!this.deprovisionRequested || this.progress.status === 'deprovisioning' || this.progress.status === 'deprovisioned') return;
      this.deprovisionRequested = false;
      this.deprovisionReason = undefined;
      this.deprovisionNotBefore = undefined;
      this.desiredChanged = true;
      delete this.progress.deprovisionAt;
    });
    setHandler(changePlanSignal, (req) => {
      this.pendingPlan = req.plan;
      this.desiredChanged = true;
    });
    setHandler(suspendSignal, () => {
      this.wantSuspended = true;
      this.desiredChanged = true;
    });
    setHandler(resumeSignal, () => {
      this.wantSuspended = false;
      this.desiredChanged = true;
    });
  }

  /** Shows a failing change (status query, Web UI details, TenantCondition search attribute). */
  setCondition(condition: TenantCondition | undefined, target?: string): void {
    const wasFailing = !!this.condition;
    this.condition = condition;
    this.conditionTarget = condition ? target : undefined;
    if (condition) this.progress.condition = condition;
    else delete this.progress.condition;
    if (wasFailing !== !!condition) {
      upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.condition, value: condition ? condition.type : CONDITION_READY }]);
    }
    setCurrentDetails(describe(this.progress));
  }

  deprovisionDue(): boolean {
    return this.deprovisionRequested && Date.now() >= (this.deprovisionNotBefore ?? 0);
  }

  suspensionChange(): boolean {
    return this.wantSuspended !== undefined && this.wantSuspended !== (this.progress.status === 'suspended');
  }

  setStatus(status: TenantStatus): void {
    this.progress.status = status;
    this.progress.updatedAt = new Date().toISOString();
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: status }]);
    setCurrentDetails(describe(this.progress));
  }

  setStep(step: string | undefined): void {
    this.progress.currentStep = step;
    this.progress.updatedAt = new Date().toISOString();
    setCurrentDetails(describe(this.progress));
  }

  /** Makes the workflow findable in the Web UI by tenant, plan and customer, whoever started it. */
  announce(): void {
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.tenantId, value: this.tenantId },
      { key: SEARCH_ATTRIBUTES.plan, value: this.input.plan },
      ...(this.input.customerId ? [{ key: SEARCH_ATTRIBUTES.customerId, value: this.input.customerId }] : []),
      { key: SEARCH_ATTRIBUTES.status, value: 'provisioning' },
    ]);
    setCurrentDetails(describe(this.progress));
  }

  /** What the next run of a continue-as-new chain inherits. */
  carry(): CarriedState {
    return {
      namespace: this.progress.namespace!,
      status: this.progress.status,
      plan: this.progress.plan,
      completedSteps: this.progress.completedSteps,
      startedAt: this.progress.startedAt,
      pendingPlan: this.pendingPlan,
      pendingSuspend: this.wantSuspended,
      deprovisionRequested: this.deprovisionRequested,
      deprovisionReason: this.deprovisionReason,
      deprovisionNotBefore: this.deprovisionNotBefore,
      ...(this.condition ? { condition: this.condition, conditionTarget: this.conditionTarget } : {}),
    };
  }
}

/** The Web UI's details line: status, plan, namespace, progress, what runs now, the last error. */
export function describe(p: TenantProgress): string {
  const done = `${p.completedSteps.length}/${PROVISION_STEPS.length} steps`;
  const step = p.currentStep ? `, running ${p.currentStep}` : '';
  const err = p.condition
    ? `, **${p.condition.step} failing** (attempt ${p.condition.attempts}, next ${p.condition.nextAttemptAt}): ${p.condition.message}`
    : p.lastError
      ? `, last error in ${p.lastError.step}: ${p.lastError.message}`
      : '';
  return `**${p.status}** · plan ${p.plan}${p.namespace ? ` · namespace ${p.namespace}` : ''} · ${done}${step}${err}`;
}
