import {
  DEFAULT_SUSPEND_STATUSES,
  decideOneOff,
  decideSubscription,
  statusClass,
  type SubscriptionDecisionInput,
  type SubscriptionState,
  type TenantRow,
} from '../../src/api/billing-decisions';

const T = 'c0ffee00-0000-5000-8000-000000000001';
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
const suspendStatuses = new Set(DEFAULT_SUSPEND_STATUSES);

function input(snapshot: Partial<SubscriptionDecisionInput['snapshot']>, state: { subscription?: SubscriptionState | null; tenant?: TenantRow | null; created?: Date } = {}): SubscriptionDecisionInput {
  return {
    snapshot: { id: 'sub_1', customerId: 'cus_1', status: 'active', plan: 'starter', ...snapshot },
    created: state.created ?? at(20),
    tenantId: T,
    subscription: state.subscription ?? null,
    tenant: state.tenant ?? null,
    fallbackPlan: 'starter',
    graceSeconds: 3600,
    suspendStatuses,
  };
}

const sub = (patch: Partial<SubscriptionState> = {}): SubscriptionState => ({ status: 'active', plan: 'starter', lastEventAt: at(10), tenantId: T, ...patch });
const activeTenant: TenantRow = { status: 'active', plan: 'starter' };

describe('statusClass', () => {
  it.each([
    ['active', 'live'],
    ['trialing', 'live'],
    ['past_due', 'hold'],
    ['unpaid', 'suspended'],
    ['paused', 'suspended'],
    ['canceled', 'ended'],
    ['incomplete_expired', 'ended'],
    ['incomplete', 'hold'],
    ['something_new', 'hold'],
  ])('%s is %s', (status, cls) => expect(statusClass(status, suspendStatuses)).toBe(cls));

  it('the dunning set is configurable: past_due may suspend where a business wants it to', () => {
    expect(statusClass('past_due', new Set(['past_due', 'unpaid']))).toBe('suspended');
    expect(statusClass('paused', new Set(['unpaid']))).toBe('hold');
  });
});

describe('decideSubscription', () => {
  it('a live subscription with no tenant yet provisions one, exactly once (signalWithStart)', () => {
    const d = decideSubscription(input({ status: 'trialing' }));
    expect(d).toMatchObject({
      action: 'apply',
      subscription: { status: 'trialing', plan: 'starter', lastEventAt: at(20), tenantId: T },
      createTenant: { plan: 'starter', status: 'provisioning' },
      dispatches: [{ op: 'start', signal: 'resume', plan: 'starter' }],
    });
  });

  it('the same live state again, for a tenant already live on that plan, queues nothing', () => {
    const d = decideSubscription(input({}, { subscription: sub(), tenant: activeTenant }));
    expect(d).toMatchObject({ action: 'apply', dispatches: [] });
    expect(d.createTenant).toBeUndefined();
  });

  it('a live subscription on another plan resumes and changes the plan', () => {
    const d = decideSubscription(input({ plan: 'pro' }, { subscription: sub(), tenant: activeTenant }));
    expect(d.dispatches).toEqual([
      { op: 'start', signal: 'resume', plan: 'pro' },
      { op: 'signal', signal: 'changePlan', plan: 'pro' },
    ]);
  });

  it('a change back while the first change is in flight is still sent (the tenant row lags behind)', () => {
    // Upgraded to pro (recorded), the workflow not done yet: the row still says starter.
    const d = decideSubscription(input({ plan: 'starter' }, { subscription: sub({ plan: 'pro' }), tenant: activeTenant }));
    expect(d.dispatches).toContainEqual({ op: 'signal', signal: 'changePlan', plan: 'starter' });
  });

  it('past_due keeps a running tenant running and provisions none', () => {
    expect(decideSubscription(input({ status: 'past_due' }, { subscription: sub(), tenant: activeTenant }))).toMatchObject({ action: 'apply', dispatches: [], detail: expect.stringMatching(/keeps running/) as unknown });
    const early = decideSubscription(input({ status: 'past_due' }));
    expect(early).toMatchObject({ action: 'apply', dispatches: [], subscription: { status: 'past_due', tenantId: null } });
    expect(early.createTenant).toBeUndefined();
  });

  it('unpaid suspends a running tenant; active again resumes it', () => {
    expect(decideSubscription(input({ status: 'unpaid' }, { subscription: sub({ status: 'past_due' }), tenant: activeTenant })).dispatches).toEqual([
      { op: 'signal', signal: 'suspend', reason: 'stripe subscription unpaid' },
    ]);
    expect(decideSubscription(input({ status: 'active' }, { subscription: sub({ status: 'unpaid' }), tenant: { status: 'suspended', plan: 'starter' } })).dispatches).toEqual([
      { op: 'start', signal: 'resume', plan: 'starter' },
    ]);
  });

  it('an older event changes nothing (newest wins)', () => {
    const d = decideSubscription(input({ status: 'unpaid' }, { subscription: sub({ lastEventAt: at(30) }), tenant: activeTenant }));
    expect(d).toMatchObject({ action: 'ignored', detail: expect.stringMatching(/older than the newest event/) as unknown });
  });

  it('canceled is final: nothing later revives it', () => {
    const d = decideSubscription(input({ status: 'active' }, { subscription: sub({ status: 'canceled' }), tenant: { status: 'deprovisioned', plan: 'starter' }, created: at(99) }));
    expect(d).toMatchObject({ action: 'ignored', detail: expect.stringMatching(/canceled; Stripe never revives/) as unknown });
  });

  it('a cancellation deprovisions after the grace period, or at once when nothing was provisioned', () => {
    expect(decideSubscription(input({ status: 'canceled' }, { subscription: sub(), tenant: activeTenant })).dispatches).toEqual([
      { op: 'start', signal: 'deprovision', plan: 'starter', reason: 'stripe subscription canceled', graceSeconds: 3600 },
    ]);
    const early = decideSubscription(input({ status: 'canceled', plan: undefined }));
    expect(early).toMatchObject({ createTenant: { status: 'deprovisioning' }, dispatches: [{ op: 'start', signal: 'deprovision', graceSeconds: 0 }] });
  });

  it('a live subscription whose price selects no plan waits for an event that names one', () => {
    expect(decideSubscription(input({ plan: undefined, planNote: 'price price_x selects no plan' }))).toMatchObject({ action: 'ignored', detail: expect.stringMatching(/no plan is known/) as unknown });
    // ... but a known subscription keeps its recorded plan.
    expect(decideSubscription(input({ plan: undefined, status: 'unpaid' }, { subscription: sub({ plan: 'pro' }), tenant: { status: 'active', plan: 'pro' } }))).toMatchObject({ subscription: { plan: 'pro' } });
  });
});

describe('decideOneOff', () => {
  const tenant: TenantRow = { status: 'active', plan: 'starter' };

  it('a payment provisions the customer\'s tenant; a newer failure suspends it', () => {
    expect(decideOneOff({ paid: true, plan: 'starter', created: at(10), payment: null, tenant: null })).toMatchObject({
      payment: { status: 'paid', eventAt: at(10) },
      createTenant: { plan: 'starter' },
      dispatches: [{ op: 'start', signal: 'resume', plan: 'starter' }],
    });
    expect(decideOneOff({ paid: false, created: at(20), payment: { status: 'paid', eventAt: at(10) }, tenant }).dispatches).toEqual([{ op: 'signal', signal: 'suspend', reason: 'payment failed' }]);
  });

  it('an older failure delivered after a newer success never suspends', () => {
    const d = decideOneOff({ paid: false, created: at(5), payment: { status: 'paid', eventAt: at(10) }, tenant });
    expect(d).toMatchObject({ action: 'ignored', detail: expect.stringMatching(/older than the customer's newest payment event/) as unknown });
  });

  it('a newer success after a failure resumes, on the paid plan', () => {
    expect(decideOneOff({ paid: true, plan: 'pro', created: at(30), payment: { status: 'failed', eventAt: at(20) }, tenant: { status: 'suspended', plan: 'starter' } }).dispatches).toEqual([
      { op: 'start', signal: 'resume', plan: 'pro' },
      { op: 'signal', signal: 'changePlan', plan: 'pro' },
    ]);
  });
});
