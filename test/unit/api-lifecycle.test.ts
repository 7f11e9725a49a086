import { decide, statusClass, type DecisionInput, type SubscriptionState, type TenantState } from '../../src/api/lifecycle';

const T = 'c0ffee00-0000-5000-8000-000000000001';
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

function input(intent: Partial<DecisionInput['intent']> & Pick<DecisionInput['intent'], 'kind'>, state: { subscription?: SubscriptionState | null; tenant?: TenantState | null } = {}): DecisionInput {
  return {
    intent: { created: at(10), subscriptionId: 'sub_1', ...intent },
    tenantId: T,
    subscription: state.subscription ?? null,
    tenant: state.tenant ?? null,
    fallbackPlan: 'starter',
    graceSeconds: 3600,
  };
}

const sub = (patch: Partial<SubscriptionState> = {}): SubscriptionState => ({ status: 'active', plan: 'starter', lastEventAt: at(10), tenantId: T, ...patch });
const activeTenant: TenantState = { status: 'active', plan: 'starter' };

describe('statusClass', () => {
  it.each([
    ['active', 'live'],
    ['trialing', 'live'],
    ['past_due', 'suspended'],
    ['unpaid', 'suspended'],
    ['paused', 'suspended'],
    ['canceled', 'ended'],
    ['incomplete_expired', 'ended'],
    ['incomplete', 'pending'],
    ['something_new', 'pending'],
  ])('%s is %s', (status, cls) => expect(statusClass(status)).toBe(cls));
});

describe('decide: successful payments', () => {
  it('starts a new tenant with resume, creates its row and links the subscription', () => {
    expect(decide(input({ kind: 'payment_succeeded', plan: 'pro' }))).toEqual({
      action: 'apply',
      detail: expect.stringContaining('plan pro') as unknown,
      subscription: { status: 'active', plan: 'pro', lastEventAt: at(10), tenantId: T },
      createTenant: { plan: 'pro', status: 'provisioning' },
      dispatches: [{ op: 'start', signal: 'resume', plan: 'pro' }],
    });
  });

  it('resumes a suspended subscription when the payment is the newest event', () => {
    const d = decide(input({ kind: 'payment_succeeded', plan: 'starter', created: at(20) }, { subscription: sub({ status: 'past_due' }), tenant: { status: 'suspended', plan: 'starter' } }));
    expect(d.subscription).toMatchObject({ status: 'active', lastEventAt: at(20) });
    expect(d.dispatches).toEqual([{ op: 'start', signal: 'resume', plan: 'starter' }]);
    expect(d.createTenant).toBeUndefined();
  });

  it('also changes the plan of a running tenant that is on another one', () => {
    const d = decide(input({ kind: 'payment_succeeded', plan: 'pro', created: at(20) }, { subscription: sub(), tenant: activeTenant }));
    expect(d.dispatches).toEqual([
      { op: 'start', signal: 'resume', plan: 'pro' },
      { op: 'signal', signal: 'changePlan', plan: 'pro' },
    ]);
  });

  it('uses the recorded plan for a renewal that names none; ignores a payment with no plan anywhere', () => {
    expect(decide(input({ kind: 'payment_succeeded', created: at(20) }, { subscription: sub({ plan: 'pro' }), tenant: { status: 'active', plan: 'pro' } })).dispatches).toEqual([
      { op: 'start', signal: 'resume', plan: 'pro' },
    ]);
    expect(decide(input({ kind: 'payment_succeeded' }))).toMatchObject({ action: 'ignored', detail: expect.stringMatching(/names no plan/) as unknown, dispatches: [] });
  });

  it('never revives a canceled subscription, whatever the timestamps', () => {
    for (const created of [at(5), at(50)]) {
      const d = decide(input({ kind: 'payment_succeeded', plan: 'starter', created }, { subscription: sub({ status: 'canceled', lastEventAt: at(10) }) }));
      expect(d).toEqual({ action: 'ignored', detail: expect.stringMatching(/canceled.*never revives/) as unknown, dispatches: [] });
    }
  });

  it('starts a late payment in the state newer events recorded (a failure came first: start suspended, on their plan)', () => {
    const recorded = sub({ status: 'past_due', plan: 'pro', lastEventAt: at(30), tenantId: null });
    const d = decide(input({ kind: 'payment_succeeded', plan: 'starter', created: at(20) }, { subscription: recorded }));
    expect(d.subscription).toEqual({ ...recorded, tenantId: T }); // linked, but status/plan/time unchanged
    expect(d.createTenant).toEqual({ plan: 'pro', status: 'provisioning' });
    expect(d.dispatches).toEqual([{ op: 'start', signal: 'suspend', plan: 'pro' }]);
  });

  it('treats a payment at the same second as the newest state as newer (ties apply in arrival order)', () => {
    const d = decide(input({ kind: 'payment_succeeded', plan: 'starter', created: at(10) }, { subscription: sub({ status: 'past_due' }), tenant: activeTenant }));
    expect(d.subscription?.status).toBe('active');
  });

  it('keys a payment without subscription by customer: start on the named plan, no subscription row', () => {
    const d = decide(input({ kind: 'payment_succeeded', plan: 'starter', subscriptionId: undefined }));
    expect(d).toEqual({
      action: 'apply',
      detail: expect.any(String) as unknown,
      createTenant: { plan: 'starter', status: 'provisioning' },
      dispatches: [{ op: 'start', signal: 'resume', plan: 'starter' }],
    });
  });
});

describe('decide: failed payments', () => {
  it('suspends a linked tenant and records past_due', () => {
    const d = decide(input({ kind: 'payment_failed', created: at(20) }, { subscription: sub(), tenant: activeTenant }));
    expect(d.subscription).toEqual({ status: 'past_due', plan: 'starter', lastEventAt: at(20), tenantId: T });
    expect(d.dispatches).toEqual([{ op: 'signal', signal: 'suspend', reason: 'payment failed' }]);
  });

  it('records the state but signals nothing before any payment succeeded', () => {
    const d = decide(input({ kind: 'payment_failed', plan: 'pro' }));
    expect(d).toMatchObject({ action: 'apply', subscription: { status: 'past_due', plan: 'pro', tenantId: null }, dispatches: [] });
    expect(d.createTenant).toBeUndefined();
  });

  it('ignores a failure for an unknown subscription that names no plan (nothing to record it with)', () => {
    expect(decide(input({ kind: 'payment_failed' })).action).toBe('ignored');
  });

  it('ignores a failure older than the newest state (the subscription was paid since)', () => {
    const d = decide(input({ kind: 'payment_failed', created: at(5) }, { subscription: sub({ lastEventAt: at(10) }), tenant: activeTenant }));
    expect(d).toEqual({ action: 'ignored', detail: expect.stringMatching(/older than the newest event/) as unknown, dispatches: [] });
  });

  it('signals the customer tenant directly when there is no subscription', () => {
    expect(decide(input({ kind: 'payment_failed', subscriptionId: undefined })).dispatches).toEqual([{ op: 'signal', signal: 'suspend', reason: 'payment failed' }]);
  });
});

describe('decide: subscription updates', () => {
  it('changes the plan of a linked tenant (and re-asserts it is live)', () => {
    const d = decide(input({ kind: 'subscription_updated', plan: 'pro', subscriptionStatus: 'active', created: at(20) }, { subscription: sub(), tenant: activeTenant }));
    expect(d.subscription).toEqual({ status: 'active', plan: 'pro', lastEventAt: at(20), tenantId: T });
    expect(d.dispatches).toEqual([
      { op: 'signal', signal: 'resume' },
      { op: 'signal', signal: 'changePlan', plan: 'pro' },
    ]);
  });

  it('suspends on past_due/unpaid/paused and sends no plan change for the same plan', () => {
    const d = decide(input({ kind: 'subscription_updated', plan: 'starter', subscriptionStatus: 'unpaid', created: at(20) }, { subscription: sub(), tenant: activeTenant }));
    expect(d.dispatches).toEqual([{ op: 'signal', signal: 'suspend', reason: 'subscription unpaid' }]);
  });

  it('never lets an older update overwrite newer state', () => {
    const d = decide(input({ kind: 'subscription_updated', plan: 'starter', subscriptionStatus: 'active', created: at(5) }, { subscription: sub({ plan: 'pro' }), tenant: activeTenant }));
    expect(d.action).toBe('ignored');
    expect(d.subscription).toBeUndefined();
  });

  it('records an update for a subscription nobody paid for yet, so the later payment starts from it', () => {
    const update = decide(input({ kind: 'subscription_updated', plan: 'pro', subscriptionStatus: 'active', created: at(20) }));
    expect(update).toMatchObject({ action: 'apply', subscription: { plan: 'pro', tenantId: null }, dispatches: [] });
    const payment = decide(input({ kind: 'payment_succeeded', plan: 'starter', created: at(10) }, { subscription: update.subscription! }));
    expect(payment.dispatches).toEqual([{ op: 'start', signal: 'resume', plan: 'pro' }]);
  });

  it('treats an update to canceled like a deletion', () => {
    const d = decide(input({ kind: 'subscription_updated', subscriptionStatus: 'canceled', created: at(20) }, { subscription: sub(), tenant: activeTenant }));
    expect(d.dispatches).toEqual([{ op: 'start', signal: 'deprovision', plan: 'starter', reason: 'stripe subscription canceled', graceSeconds: 3600 }]);
  });
});

describe('decide: deletions', () => {
  it('deprovisions a paid tenant after the grace period and records the subscription canceled', () => {
    const d = decide(input({ kind: 'subscription_deleted', subscriptionStatus: 'canceled', created: at(20) }, { subscription: sub(), tenant: activeTenant }));
    expect(d.subscription).toEqual({ status: 'canceled', plan: 'starter', lastEventAt: at(20), tenantId: T });
    expect(d.dispatches).toEqual([{ op: 'start', signal: 'deprovision', plan: 'starter', reason: 'stripe subscription canceled', graceSeconds: 3600 }]);
    expect(d.createTenant).toBeUndefined();
  });

  it('before any payment: deprovision at once (no grace: nothing may go live), record canceled, create the row as deprovisioning', () => {
    const d = decide(input({ kind: 'subscription_deleted', subscriptionStatus: 'canceled', plan: 'pro' }));
    expect(d).toEqual({
      action: 'apply',
      detail: expect.any(String) as unknown,
      subscription: { status: 'canceled', plan: 'pro', lastEventAt: at(10), tenantId: T },
      createTenant: { plan: 'pro', status: 'deprovisioning' },
      dispatches: [{ op: 'start', signal: 'deprovision', plan: 'pro', reason: 'stripe subscription canceled', graceSeconds: 0 }],
    });
    // ... and the payment that arrives afterwards (older) is ignored.
    expect(decide(input({ kind: 'payment_succeeded', plan: 'pro', created: at(5) }, { subscription: d.subscription! })).action).toBe('ignored');
  });

  it('applies even when older than the newest state (canceled is terminal) without moving last_event_at back', () => {
    const d = decide(input({ kind: 'subscription_deleted', subscriptionStatus: 'canceled', created: at(5) }, { subscription: sub({ lastEventAt: at(30) }), tenant: activeTenant }));
    expect(d.subscription).toMatchObject({ status: 'canceled', lastEventAt: at(30) });
    expect(d.dispatches).toHaveLength(1);
  });

  it('falls back to a catalogue plan when no event ever named one (the column is required)', () => {
    expect(decide(input({ kind: 'subscription_deleted', subscriptionStatus: 'canceled' })).subscription?.plan).toBe('starter');
  });
});
