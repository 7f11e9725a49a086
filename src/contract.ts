/**
 * The contract shared by the API, the worker and the workflow code: task queue, workflow ids,
 * signals, queries and the shapes they carry. Nothing here may do I/O (workflows import it).
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';

export const TASK_QUEUE_DEFAULT = 'tenant-provisioning';

/**
 * The task queue of the slow activities (Helm, namespace deletion) of workflows on `taskQueue`:
 * a second worker polls it with its own slots, so minutes of Helm never hold up the quick steps.
 * A pure function of the workflow's own queue, so workflow code derives it deterministically.
 */
export function helmTaskQueue(taskQueue: string): string {
  return `${taskQueue}-helm`;
}

export type TenantStatus = 'provisioning' | 'active' | 'failed' | 'suspended' | 'deprovisioning' | 'deprovisioned';

/** The provisioning steps, in order (seed: "Provisioning Flow"). Step 9 is the workflow's result. */
export const PROVISION_STEPS = [
  'recordTenant',
  'assignNamespace',
  'ensureNamespace',
  'applyNetworkPolicies',
  'applyResourceLimits',
  'ensureSecrets',
  'deployApp',
  'markActive',
] as const;
export type ProvisionStep = (typeof PROVISION_STEPS)[number];

export interface ProvisionTenantInput {
  tenantId: string;
  plan: string;
  userId?: string;
  /** Stripe customer id, shown in the Temporal Web UI; never a secret. */
  customerId?: string;
  /** Set by the workflow itself when it continues as new after provisioning. */
  carried?: CarriedState;
  /** History size that triggers continue-as-new (default 2,000 events); tests set it low. */
  maxHistoryEvents?: number;
  /** How often a live tenant's isolation objects are re-applied to undo drift (default 6 hours). */
  reconcileIntervalSeconds?: number;
  /**
   * Backoff of a lifecycle change that keeps failing (plan change, suspend, resume, reconcile):
   * the first retry after `initialSeconds` (default 30), doubling up to `maxSeconds` (default 1 hour).
   */
  lifecycleBackoff?: { initialSeconds?: number; maxSeconds?: number };
  /**
   * Cleanup run: set when a tenant whose lifecycle workflow is closed (failed, terminated) is
   * deprovisioned. The run provisions nothing; it removes everything labelled as the tenant's and
   * marks the tenant `deprovisioned`.
   */
  cleanup?: { reason?: string };
}

/** What a continued-as-new run inherits from its predecessor. */
export interface CarriedState {
  namespace: string;
  status: TenantStatus;
  plan: string;
  completedSteps: ProvisionStep[];
  startedAt: string;
  pendingPlan?: string;
  pendingSuspend?: boolean;
  deprovisionRequested?: boolean;
  deprovisionReason?: string;
  deprovisionNotBefore?: number;
  /** A lifecycle change that keeps failing, carried so its backoff survives continue-as-new. */
  condition?: TenantCondition;
  /** The desired state that change was reaching for (a new one is tried at once, not after the backoff). */
  conditionTarget?: string;
}

/**
 * A lifecycle change that failed and is being retried with backoff. Shown by the status query and
 * the status API, mirrored into PostgreSQL (`tenants.metadata.condition`, plus `last_error`) and
 * into the `TenantCondition` search attribute; cleared when the change succeeds or is no longer
 * wanted.
 */
export interface TenantCondition {
  type: 'ChangeFailing';
  /** The change being retried: changePlan, suspend, resume, reconcile, … */
  step: string;
  message: string;
  /** Failed attempts so far (each attempt already includes the activity's own bounded retries). */
  attempts: number;
  /** When the first of these failures happened (ISO 8601). */
  since: string;
  /** When the next attempt runs unless the desired state changes first (ISO 8601). */
  nextAttemptAt: string;
}

export interface StepFailure {
  step: string;
  message: string;
  type?: string;
}

export interface TenantProgress {
  tenantId: string;
  status: TenantStatus;
  plan: string;
  namespace?: string;
  currentStep?: string;
  completedSteps: ProvisionStep[];
  /** Steps undone by the saga after a failure, in the order they were undone. */
  compensatedSteps: string[];
  lastError?: StepFailure;
  /** Failures of compensations; recorded, never hiding lastError. */
  compensationErrors: StepFailure[];
  startedAt: string;
  updatedAt: string;
  /** When a requested deprovision will run (after its grace period). */
  deprovisionAt?: string;
  /** Set while a lifecycle change is failing and being retried. */
  condition?: TenantCondition;
  /** The last isolation check by traffic that passed (absent: not checked, e.g. switched off). */
  isolation?: { status: 'verified'; at: string };
}

export interface ProvisionTenantResult {
  tenantId: string;
  status: Extract<TenantStatus, 'active' | 'failed' | 'deprovisioned'>;
  namespace?: string;
  error?: StepFailure;
  compensationErrors?: StepFailure[];
}

export interface DeprovisionRequest {
  reason?: string;
  /** Keep the tenant this long before tearing it down (e.g. a cancellation grace period). */
  graceSeconds?: number;
}

export interface PlanChangeRequest {
  plan: string;
}

export interface SuspendRequest {
  reason?: string;
}

export const deprovisionSignal = defineSignal<[DeprovisionRequest]>('deprovision');
export const changePlanSignal = defineSignal<[PlanChangeRequest]>('changePlan');
export const suspendSignal = defineSignal<[SuspendRequest]>('suspend');
export const resumeSignal = defineSignal<[]>('resume');
/** Cancels a pending deprovision that is still in its grace period; ignored once teardown started. */
export const cancelDeprovisionSignal = defineSignal<[]>('cancelDeprovision');
export const statusQuery = defineQuery<TenantProgress>('status');

/** Search attributes registered on the Temporal namespace (see scripts/stack.sh). */
export const SEARCH_ATTRIBUTES = {
  tenantId: defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey('TenantStatus', SearchAttributeType.KEYWORD),
  plan: defineSearchAttributeKey('TenantPlan', SearchAttributeType.KEYWORD),
  customerId: defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD),
  /** `ChangeFailing` while a lifecycle change is being retried, `Ready` otherwise. */
  condition: defineSearchAttributeKey('TenantCondition', SearchAttributeType.KEYWORD),
} as const;

/** Values of the TenantCondition search attribute. */
export const CONDITION_READY = 'Ready';

/** Workflow id of a tenant's lifecycle workflow: a business key, so one tenant has one workflow. */
export { workflowIdFor as tenantWorkflowId } from './naming';
