/**
 * How what Stripe shows changes a tenant: pure decisions from the event's facts, the state recorded
 * so far and the tenant row. The webhook runs them under a per-tenant lock in one short transaction
 * and commits their dispatches to the outbox (outbox.ts delivers them to the tenant's workflow).
 *
 * Stripe delivers events late, twice and out of order; the rules that make the outcome converge to
 * what Stripe finally describes:
 *
 * - **Newest wins.** Per subscription, `subscriptions.last_event_at` is the `created` of the newest
 *   event applied; per one-off customer, `users.payment_event_at`. An older event changes nothing.
 * - **Canceled is final.** `canceled` and `incomplete_expired` are terminal: Stripe never revives
 *   such a subscription, so nothing after it starts or resumes a tenant, whatever its timestamp.
 * - **The subscription's status decides** (`statusClass`):
 *   - `active`, `trialing` → live: the tenant is provisioned (exactly once: signalWithStart on the
 *     tenant's workflow id) or resumed, on the plan the subscription's price selects;
 *   - the dunning statuses (configurable, default `unpaid` and `paused`) → suspended: a running
 *     tenant is scaled to zero, data kept; none is provisioned;
 *   - `canceled`, `incomplete_expired` → ended: deprovision after the grace period (at once when
 *     the tenant was never provisioned);
 *   - anything else (`past_due` by default, `incomplete`) → hold: a running tenant keeps running
 *     while Stripe retries; none is provisioned.
 * - **One-off payments**: a newer success provisions or resumes the customer's tenant; a newer
 *   failure suspends it; an older failure never suspends after a newer success.
 */
import type { TenantStatus } from '../contract';
import type { SubscriptionSnapshot } from './stripe-events';

export type StatusClass = 'live' | 'suspended' | 'ended' | 'hold';

export const DEFAULT_SUSPEND_STATUSES: readonly string[] = ['unpaid', 'paused'];

export function statusClass(status: string, suspendStatuses: ReadonlySet<string> = new Set(DEFAULT_SUSPEND_STATUSES)): StatusClass {
  if (status === 'active' || status === 'trialing') return 'live';
  if (status === 'canceled' || status === 'incomplete_expired') return 'ended';
  if (suspendStatuses.has(status)) return 'suspended';
  return 'hold';
}

/** The row in `subscriptions`. */
export interface SubscriptionState {
  status: string;
  plan: string;
  lastEventAt: Date | null;
  tenantId: string | null;
}

/** The one-off payment state of a customer (`users.payment_status`, `users.payment_event_at`). */
export interface PaymentState {
  status: 'paid' | 'failed';
  eventAt: Date;
}

/** The tenant's row in `tenants`, as far as a decision reads it. */
export interface TenantRow {
  status: TenantStatus;
  plan: string;
}

/**
 * `start`: signalWithStart. `resume`/`suspend` starts reuse a failed run's id (a failed provisioning
 * may be retried by a later payment) but never a completed one (a deprovisioned tenant stays gone);
 * `deprovision` starts never reuse a closed run's id: there is nothing left to tear down.
 * `signal`: the running workflow only; when none runs, the signal is moot.
 */
export type Dispatch =
  /** `reuse: 'always'`: an explicit internal request may bring back a tenant whose lifecycle ended. */
  | { op: 'start'; signal: 'resume' | 'suspend'; plan: string; reason?: string; reuse?: 'always' }
  | { op: 'start'; signal: 'deprovision'; plan: string; reason: string; graceSeconds: number }
  | { op: 'signal'; signal: 'resume' | 'suspend'; reason?: string }
  | { op: 'signal'; signal: 'changePlan'; plan: string };

export interface Decision {
  /** `ignored`: nothing changes. `apply`: write the state, create the tenant row, queue the dispatches. */
  action: 'ignored' | 'apply';
  detail: string;
  subscription?: SubscriptionState;
  payment?: PaymentState;
  /** The tenant row to create (before its workflow starts, so the status API shows it at once). */
  createTenant?: { plan: string; status: Extract<TenantStatus, 'provisioning' | 'deprovisioning'> };
  dispatches: Dispatch[];
}

const ignored = (detail: string): Decision => ({ action: 'ignored', detail, dispatches: [] });

const iso = (d: Date | null) => (d ? d.toISOString() : 'never');

export interface SubscriptionDecisionInput {
  snapshot: SubscriptionSnapshot;
  /** The event's `created`: the time the snapshot is taken to describe. */
  created: Date;
  /** The tenant the subscription maps to. */
  tenantId: string;
  subscription: SubscriptionState | null;
  tenant: TenantRow | null;
  /** Plan recorded for a subscription whose price never named one (the column is required). */
  fallbackPlan: string;
  graceSeconds: number;
  suspendStatuses: ReadonlySet<string>;
}

export function decideSubscription(input: SubscriptionDecisionInput): Decision {
  const { snapshot, created, tenantId, tenant } = input;
  const sub = input.subscription;
  const cls = statusClass(snapshot.status, input.suspendStatuses);
  const note = snapshot.plan || !snapshot.planNote ? '' : ` (no plan: ${snapshot.planNote})`;
  const name = `subscription ${snapshot.id}`;

  if (sub && statusClass(sub.status, input.suspendStatuses) === 'ended' && cls !== 'ended') {
    return ignored(`${name} is ${sub.status}; Stripe never revives it, so a later ${snapshot.status} state changes nothing`);
  }
  if (sub?.lastEventAt && created.getTime() < sub.lastEventAt.getTime()) {
    return ignored(`older than the newest event applied to ${name} (${iso(created)} < ${iso(sub.lastEventAt)})`);
  }
  const plan = snapshot.plan ?? sub?.plan ?? tenant?.plan;
  const lastEventAt = created;
  const linked = tenant !== null;

  switch (cls) {
    case 'ended': {
      const recorded = plan ?? input.fallbackPlan;
      // Paid and then canceled: the grace period applies. Canceled before any tenant: tear down now.
      const graceSeconds = linked && tenant.status !== 'deprovisioning' && tenant.status !== 'deprovisioned' ? input.graceSeconds : 0;
      return {
        action: 'apply',
        detail: `${name} ${snapshot.status}: deprovision${graceSeconds ? ` after ${graceSeconds} s` : ''}`,
        subscription: { status: snapshot.status, plan: recorded, lastEventAt, tenantId },
        ...(tenant ? {} : { createTenant: { plan: recorded, status: 'deprovisioning' as const } }),
        dispatches: [{ op: 'start', signal: 'deprovision', plan: recorded, reason: `stripe subscription ${snapshot.status}`, graceSeconds }],
      };
    }
    case 'live': {
      if (!plan) return ignored(`${name} is ${snapshot.status} but no plan is known for it${note}; a later event with a plan provisions it`);
      const state: SubscriptionState = { status: snapshot.status, plan, lastEventAt, tenantId };
      const settled = linked && sub !== null && statusClass(sub.status, input.suspendStatuses) === 'live' && sub.plan === plan && tenant.plan === plan && (tenant.status === 'active' || tenant.status === 'provisioning');
      if (settled) return { action: 'apply', detail: `${name} ${snapshot.status} on plan ${plan}: already so${note}`, subscription: state, dispatches: [] };
      const dispatches: Dispatch[] = [{ op: 'start', signal: 'resume', plan }];
      if (tenant && planChanges(plan, tenant, sub)) dispatches.push({ op: 'signal', signal: 'changePlan', plan });
      return {
        action: 'apply',
        detail: `${name} ${snapshot.status}: tenant ${linked ? 'live' : 'provisioned'} on plan ${plan}${note}`,
        subscription: state,
        ...(tenant ? {} : { createTenant: { plan, status: 'provisioning' as const } }),
        dispatches,
      };
    }
    case 'suspended':
    case 'hold': {
      const recorded = plan ?? input.fallbackPlan;
      const state: SubscriptionState = { status: snapshot.status, plan: recorded, lastEventAt, tenantId: linked ? tenantId : (sub?.tenantId ?? null) };
      const dispatches: Dispatch[] = [];
      if (linked && cls === 'suspended') dispatches.push({ op: 'signal', signal: 'suspend', reason: `stripe subscription ${snapshot.status}` });
      if (linked && plan && planChanges(plan, tenant, sub)) dispatches.push({ op: 'signal', signal: 'changePlan', plan });
      const what = cls === 'suspended' ? 'suspend the tenant' : 'the tenant keeps running while Stripe retries';
      return {
        action: 'apply',
        detail: linked ? `${name} ${snapshot.status}: ${what}${note}` : `${name} ${snapshot.status}: state recorded, no tenant is provisioned for it${note}`,
        subscription: state,
        dispatches,
      };
    }
  }
}

/**
 * A plan change is due when the plan differs from the tenant row's or from the one last recorded
 * for the subscription: the row follows only once the workflow has applied a change, so while an
 * upgrade is in flight a downgrade back must still be sent, though the row shows the old plan.
 */
function planChanges(plan: string, tenant: TenantRow, sub: SubscriptionState | null): boolean {
  return tenant.plan !== plan || (sub !== null && sub.plan !== plan);
}

export interface OneOffDecisionInput {
  paid: boolean;
  plan?: string;
  created: Date;
  payment: PaymentState | null;
  tenant: TenantRow | null;
}

/** Payments of a tenant that belongs to a customer (no subscription). */
export function decideOneOff(input: OneOffDecisionInput): Decision {
  const { payment, tenant, created } = input;
  if (payment && created.getTime() < payment.eventAt.getTime()) {
    return ignored(`older than the customer's newest payment event (${iso(created)} < ${iso(payment.eventAt)}, ${payment.status})`);
  }
  if (input.paid) {
    if (!input.plan) return ignored('the payment names no plan (metadata.plan)');
    const dispatches: Dispatch[] = [{ op: 'start', signal: 'resume', plan: input.plan }];
    if (tenant && tenant.plan !== input.plan) dispatches.push({ op: 'signal', signal: 'changePlan', plan: input.plan });
    return {
      action: 'apply',
      detail: `payment: customer's tenant live on plan ${input.plan}`,
      payment: { status: 'paid', eventAt: created },
      ...(tenant ? {} : { createTenant: { plan: input.plan, status: 'provisioning' as const } }),
      dispatches,
    };
  }
  return {
    action: 'apply',
    detail: tenant ? "payment failed: suspend the customer's tenant" : 'payment failed: recorded; the customer has no tenant to suspend',
    payment: { status: 'failed', eventAt: created },
    dispatches: tenant ? [{ op: 'signal', signal: 'suspend', reason: 'payment failed' }] : [],
  };
}
