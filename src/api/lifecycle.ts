/**
 * How an event changes a tenant: a pure decision from the event's intent, the subscription state
 * recorded so far and the tenant row. The webhook runs it under a per-tenant lock and then carries
 * it out (Temporal signals, then the state write), so concurrent deliveries see each other's work.
 *
 * Stripe delivers events late, twice and out of order; the rules that make the outcome converge to
 * what Stripe finally describes:
 *
 * - Per subscription, `subscriptions.last_event_at` is the `created` of the newest event applied.
 *   An older event never overwrites newer state (status, plan).
 * - `canceled` (and `incomplete_expired`) is terminal: Stripe never revives such a subscription, so
 *   nothing after it starts or resumes a tenant, whatever its timestamp.
 * - A successful payment starts the tenant (signalWithStart) with the signal that the newest state
 *   asks for: `resume` normally (a no-op for an active tenant), `suspend` when a newer failed payment
 *   was already recorded. It links the subscription to its tenant (`subscriptions.tenant_id`).
 * - Other events only signal a tenant that a payment has started ("linked"); before that they just
 *   record state, which the payment then starts from. The exception is a deletion: it starts the
 *   workflow with a `deprovision` signal (no grace period when nothing was ever paid), which leaves no
 *   live tenant, and records the subscription canceled so that a late payment is ignored.
 */
import type { TenantStatus } from '../contract';
import type { LifecycleIntent } from './stripe-events';

export type SignalName = 'resume' | 'suspend' | 'changePlan' | 'deprovision';

/** Stripe subscription statuses, by what they mean for the tenant. */
export type StatusClass = 'live' | 'suspended' | 'ended' | 'pending';

export function statusClass(status: string): StatusClass {
  switch (status) {
    case 'active':
    case 'trialing':
      return 'live';
    case 'past_due':
    case 'unpaid':
    case 'paused':
      return 'suspended';
    case 'canceled':
    case 'incomplete_expired':
      return 'ended';
    default:
      return 'pending'; // incomplete, or a status Stripe adds later: leave the tenant as it is
  }
}

/** The row in `subscriptions` (absent for tenants that belong to a customer, not a subscription). */
export interface SubscriptionState {
  status: string;
  plan: string;
  lastEventAt: Date | null;
  tenantId: string | null;
}

export interface TenantState {
  status: TenantStatus;
  plan: string;
}

export interface DecisionInput {
  intent: Pick<LifecycleIntent, 'kind' | 'created' | 'subscriptionId' | 'plan' | 'subscriptionStatus' | 'note'>;
  /** The tenant this event maps to (by subscription, else by customer). */
  tenantId: string;
  subscription: SubscriptionState | null;
  tenant: TenantState | null;
  /** Plan recorded for a deleted subscription nobody ever named a plan for (the column is required). */
  fallbackPlan: string;
  graceSeconds: number;
}

/**
 * `start`: signalWithStart. `resume`/`suspend` starts reuse a failed run's id (a failed provisioning
 * may be retried by a later payment) but never a completed one (a deprovisioned tenant stays gone);
 * `deprovision` starts never reuse a closed run's id: there is nothing left to tear down.
 * `signal`: the running workflow only; when none runs, the signal is moot.
 */
export type Dispatch =
  | { op: 'start'; signal: 'resume' | 'suspend'; plan: string }
  | { op: 'start'; signal: 'deprovision'; plan: string; reason: string; graceSeconds: number }
  | { op: 'signal'; signal: 'resume' | 'suspend'; reason?: string }
  | { op: 'signal'; signal: 'changePlan'; plan: string };

export interface Decision {
  /** `ignored`: nothing changes. `apply`: write `subscription` (when set), then dispatch in order. */
  action: 'ignored' | 'apply';
  detail: string;
  subscription?: SubscriptionState;
  /** The tenant row to create (status `provisioning`) before a start, so the link has a target. */
  createTenant?: { plan: string; status: Extract<TenantStatus, 'provisioning' | 'deprovisioning'> };
  dispatches: Dispatch[];
}

const ignored = (detail: string): Decision => ({ action: 'ignored', detail, dispatches: [] });

const iso = (d: Date | null) => (d ? d.toISOString() : 'never');

export function decide(input: DecisionInput): Decision {
  const { intent, tenantId, tenant } = input;
  const sub = intent.subscriptionId ? input.subscription : null;
  const note = intent.note ? ` (${intent.note})` : '';

  if (!intent.subscriptionId) return decideForCustomerTenant(input, note);

  const ending = intent.kind === 'subscription_deleted' || (intent.kind === 'subscription_updated' && statusClass(intent.subscriptionStatus ?? '') === 'ended');
  if (sub && statusClass(sub.status) === 'ended' && !ending) {
    return ignored(`subscription ${intent.subscriptionId} is ${sub.status}; a ${intent.kind.replace('_', ' ')} event never revives it`);
  }
  const newer = !sub || !sub.lastEventAt || intent.created.getTime() >= sub.lastEventAt.getTime();
  const linked = Boolean(sub?.tenantId) || tenant !== null;

  if (ending) {
    const plan = sub?.plan ?? intent.plan ?? tenant?.plan ?? input.fallbackPlan;
    const lastEventAt = sub?.lastEventAt && sub.lastEventAt > intent.created ? sub.lastEventAt : intent.created;
    // Paid and then cancelled: the grace period applies. Cancelled before any payment: tear down now.
    const graceSeconds = linked ? input.graceSeconds : 0;
    return {
      action: 'apply',
      detail: `subscription ${intent.subscriptionId} ${intent.subscriptionStatus ?? 'canceled'}: deprovision${graceSeconds ? ` after ${graceSeconds} s` : ''}${note}`,
      subscription: { status: intent.subscriptionStatus ?? 'canceled', plan, lastEventAt, tenantId },
      ...(tenant ? {} : { createTenant: { plan, status: 'deprovisioning' as const } }),
      dispatches: [{ op: 'start', signal: 'deprovision', plan, reason: `stripe subscription ${intent.subscriptionStatus ?? 'canceled'}`, graceSeconds }],
    };
  }

  if (!newer) {
    if (intent.kind !== 'payment_succeeded') {
      return ignored(`older than the newest event applied to subscription ${intent.subscriptionId} (${iso(intent.created)} < ${iso(sub.lastEventAt)})`);
    }
    // A late payment still proves the subscription was paid: start the tenant in the state the
    // newer events describe, with their plan.
    const state = { ...sub, tenantId };
    return {
      action: 'apply',
      detail: `payment older than the subscription's newest state (${sub.status}, plan ${sub.plan}); tenant started in that state${note}`,
      subscription: state,
      ...(tenant ? {} : { createTenant: { plan: state.plan, status: 'provisioning' as const } }),
      dispatches: startAndReconcile(state.status, state.plan, tenant),
    };
  }

  switch (intent.kind) {
    case 'payment_succeeded': {
      const plan = intent.plan ?? sub?.plan;
      if (!plan) return ignored(`the payment names no plan (metadata.plan) and subscription ${intent.subscriptionId} has none recorded`);
      const state: SubscriptionState = { status: 'active', plan, lastEventAt: intent.created, tenantId };
      return {
        action: 'apply',
        detail: `payment for subscription ${intent.subscriptionId}: tenant live on plan ${plan}${note}`,
        subscription: state,
        ...(tenant ? {} : { createTenant: { plan, status: 'provisioning' as const } }),
        dispatches: startAndReconcile(state.status, plan, tenant),
      };
    }
    case 'payment_failed': {
      const plan = sub?.plan ?? intent.plan;
      if (!plan) return ignored(`no tenant for subscription ${intent.subscriptionId} yet, and the event names no plan to record its state with`);
      const state: SubscriptionState = { status: 'past_due', plan, lastEventAt: intent.created, tenantId: sub?.tenantId ?? null };
      return {
        action: 'apply',
        detail: linked ? `payment failed: suspend the tenant${note}` : `payment failed before any payment succeeded: state recorded, no tenant to suspend${note}`,
        subscription: state,
        dispatches: linked ? [{ op: 'signal', signal: 'suspend', reason: 'payment failed' }] : [],
      };
    }
    case 'subscription_updated': {
      const plan = intent.plan ?? sub?.plan;
      if (!plan) return ignored(`subscription ${intent.subscriptionId} is not known yet and the update names no plan${note}`);
      const status = intent.subscriptionStatus ?? sub?.status ?? 'active';
      const state: SubscriptionState = { status, plan, lastEventAt: intent.created, tenantId: sub?.tenantId ?? null };
      return {
        action: 'apply',
        detail: linked
          ? `subscription ${status} on plan ${plan}${note}`
          : `subscription ${status} on plan ${plan} recorded; no payment has started its tenant yet${note}`,
        subscription: state,
        dispatches: linked ? reconcile(status, plan, tenant ?? { plan: sub!.plan }) : [],
      };
    }
    case 'subscription_deleted':
      throw new Error('unreachable: a deletion is an ending event'); // handled above
  }
}

/** Payments and failures for a tenant that belongs to a customer (no subscription, so no ordering state). */
function decideForCustomerTenant(input: DecisionInput, note: string): Decision {
  const { intent, tenant } = input;
  switch (intent.kind) {
    case 'payment_succeeded': {
      if (!intent.plan) return ignored('the payment names no plan (metadata.plan)');
      return {
        action: 'apply',
        detail: `payment: customer's tenant live on plan ${intent.plan}${note}`,
        ...(tenant ? {} : { createTenant: { plan: intent.plan, status: 'provisioning' as const } }),
        dispatches: startAndReconcile('active', intent.plan, tenant),
      };
    }
    case 'payment_failed':
      return { action: 'apply', detail: `payment failed: suspend the customer's tenant${note}`, dispatches: [{ op: 'signal', signal: 'suspend', reason: 'payment failed' }] };
    default:
      return ignored(`a ${intent.kind.replace('_', ' ')} event without a subscription id`);
  }
}

/** signalWithStart with the status signal, then a plan change if a running tenant is on another plan. */
function startAndReconcile(status: string, plan: string, tenant: TenantState | null): Dispatch[] {
  const signal = statusClass(status) === 'suspended' ? 'suspend' : 'resume';
  const dispatches: Dispatch[] = [{ op: 'start', signal, plan }];
  if (tenant && tenant.plan !== plan) dispatches.push({ op: 'signal', signal: 'changePlan', plan });
  return dispatches;
}

/** Signals that bring a running tenant to the subscription's state; each is idempotent in the workflow. */
function reconcile(status: string, plan: string, current: { plan: string }): Dispatch[] {
  const dispatches: Dispatch[] = [];
  const cls = statusClass(status);
  if (cls === 'suspended') dispatches.push({ op: 'signal', signal: 'suspend', reason: `subscription ${status}` });
  if (cls === 'live') dispatches.push({ op: 'signal', signal: 'resume' });
  if (plan !== current.plan) dispatches.push({ op: 'signal', signal: 'changePlan', plan });
  return dispatches;
}
