import { buildTestEvent, type TestEventInput } from '../../src/cli/send-test-event';
import { classifyEvent, snapshotOfSubscription, stripeEventEnvelope, type StripeEventEnvelope } from '../../src/api/stripe-events';
import { claimDisagreement } from '../../src/api/webhook';
import { loadPlanCatalogue } from '../../src/plans';

const plans = loadPlanCatalogue();
const created = new Date(1_700_000_000_000);

function envelope(input: TestEventInput, patch: (object: Record<string, unknown>) => void = () => undefined): StripeEventEnvelope {
  const e = buildTestEvent({ created: 1_700_000_000, ...input });
  patch((e.data as { object: Record<string, unknown> }).object);
  return stripeEventEnvelope.parse(e);
}

describe('stripeEventEnvelope', () => {
  it('accepts what Stripe sends and what the CLI builds from Stripe fixtures', () => {
    for (const type of ['payment_intent.succeeded', 'invoice.paid', 'checkout.session.completed', 'customer.subscription.created'] as const) {
      expect(stripeEventEnvelope.safeParse(buildTestEvent({ type, customer: 'cus_1', plan: 'starter' })).success).toBe(true);
    }
  });

  it.each([
    ['an id that is not evt_', { id: 'pi_123' }],
    ['a non-event object', { object: 'payment_intent' }],
    ['no created', { created: undefined }],
    ['a fractional created', { created: 1.5 }],
    ['no data.object', { data: {} }],
    ['a type with odd characters', { type: 'payment intent succeeded' }],
  ])('rejects %s', (_what, patch) => {
    const e = { ...buildTestEvent({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'starter' }), ...patch };
    expect(stripeEventEnvelope.safeParse(e).success).toBe(false);
  });
});

describe('classifyEvent: subscriptions', () => {
  it.each(['customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.paused', 'customer.subscription.resumed'] as const)(
    '%s carries the subscription: status and the plan its price lookup_key selects',
    (type) => {
      const result = classifyEvent(envelope({ type, customer: 'cus_1', subscription: 'sub_1', plan: 'pro', status: 'trialing' }), plans);
      expect(result).toEqual({
        action: 'subscription',
        eventId: expect.stringMatching(/^evt_/) as unknown,
        eventType: type,
        created,
        customerId: 'cus_1',
        subscriptionId: 'sub_1',
        snapshot: { id: 'sub_1', customerId: 'cus_1', status: 'trialing', plan: 'pro', currency: 'usd' },
      });
    },
  );

  it('a deleted subscription is canceled whatever its payload says', () => {
    const result = classifyEvent(envelope({ type: 'customer.subscription.deleted', customer: 'cus_1', subscription: 'sub_1' }, (o) => (o.status = 'active')), plans);
    expect(result).toMatchObject({ action: 'subscription', snapshot: { status: 'canceled' } });
  });

  it('a price that selects no plan leaves the plan out and says why', () => {
    const result = classifyEvent(envelope({ type: 'customer.subscription.created', customer: 'cus_1', subscription: 'sub_1', plan: 'gold' }), plans);
    expect(result).toMatchObject({ action: 'subscription', snapshot: { status: 'active', planNote: expect.stringContaining('lookup_key "gold"') as unknown } });
    expect(result).not.toHaveProperty('snapshot.plan');
  });

  it.each([
    ['invoice.paid', {}],
    ['invoice.payment_failed', {}],
    ['checkout.session.completed', {}],
    ['checkout.session.completed', { paymentStatus: 'no_payment_required' }],
  ] as const)('%s names only the subscription: it must be read from the Stripe API', (type, extra) => {
    const result = classifyEvent(envelope({ type, customer: 'cus_1', subscription: 'sub_9', ...extra }), plans);
    expect(result).toEqual({ action: 'subscription', eventId: expect.any(String) as unknown, eventType: type, created, customerId: 'cus_1', subscriptionId: 'sub_9' });
  });

  it('an invoice of API versions before 2025-03-31 names its subscription at the top level', () => {
    const result = classifyEvent(envelope({ type: 'invoice.paid', customer: 'cus_1' }, (o) => Object.assign(o, { parent: null, subscription: 'sub_old' })), plans);
    expect(result).toMatchObject({ action: 'subscription', subscriptionId: 'sub_old' });
  });

  it.each([
    ['an unpaid checkout', { type: 'checkout.session.completed', paymentStatus: 'unpaid' }, /payment_status is "unpaid"/],
    ['a one-off checkout', { type: 'checkout.session.completed', mode: 'payment' }, /"payment" mode/],
    ['an invoice of no subscription', { type: 'invoice.paid', patch: (o: Record<string, unknown>) => (o.parent = null) }, /no subscription/],
  ] as const)('ignores %s', (_what, spec, reason) => {
    const { patch, ...input } = spec as TestEventInput & { patch?: (o: Record<string, unknown>) => void };
    const result = classifyEvent(envelope({ subscription: 'sub_1', ...input, customer: 'cus_1' }, patch), plans);
    expect(result).toEqual({ action: 'ignore', reason: expect.stringMatching(reason) as unknown });
  });
});

describe('classifyEvent: payments', () => {
  it('a payment with metadata.plan and no subscription is a one-off payment of the customer', () => {
    const result = classifyEvent(envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'starter' }), plans);
    expect(result).toMatchObject({ action: 'one-off', customerId: 'cus_1', paid: true, plan: 'starter' });
  });

  it('a failed one-off payment is a one-off failure', () => {
    const result = classifyEvent(envelope({ type: 'payment_intent.payment_failed', customer: 'cus_1', plan: 'starter' }), plans);
    expect(result).toMatchObject({ action: 'one-off', paid: false });
  });

  it('a payment naming its subscription and plan is a claim: the subscription is read from the Stripe API, never built from metadata', () => {
    const e = envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'pro', subscription: 'sub_1' });
    const result = classifyEvent(e, plans);
    expect(result).toMatchObject({ action: 'subscription', subscriptionId: 'sub_1', claim: { paymentIntentId: (e.data.object as { id: string }).id, plan: 'pro', currency: 'usd' } });
    expect(result).not.toHaveProperty('snapshot');
  });

  it.each([
    ['succeeded', 'payment_intent.succeeded', true],
    ['failed', 'payment_intent.payment_failed', false],
  ] as const)("a %s one-off payment must be exactly the plan's one-off price", (_what, type, paid) => {
    expect(classifyEvent(envelope({ type, customer: 'cus_1', plan: 'enterprise' }), plans)).toMatchObject({ action: 'one-off', plan: 'enterprise', paid });
    expect(classifyEvent(envelope({ type, customer: 'cus_1', plan: 'enterprise', amount: 50 }), plans)).toEqual({
      action: 'ignore',
      reason: "a one-off payment of 50 usd does not match plan enterprise's price of 49900 usd",
    });
    expect(classifyEvent(envelope({ type, customer: 'cus_1', plan: 'enterprise', currency: 'jpy' }), plans)).toMatchObject({ action: 'ignore', reason: /49900 jpy does not match/ });
  });

  it('a succeeded one-off payment is judged by what was received, not what was asked', () => {
    const e = envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'starter' }, (o) => (o.amount_received = 1));
    expect(classifyEvent(e, plans)).toMatchObject({ action: 'ignore', reason: /payment of 1 usd/ });
  });

  it('a plan without a one-off price cannot be bought by a one-off payment', () => {
    const noPrice = loadPlanCatalogue(JSON.stringify(plans.ids().map((id) => ({ ...plans.get(id), stripe: {} }))));
    expect(classifyEvent(envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'starter' }), noPrice)).toEqual({
      action: 'ignore',
      reason: 'plan starter has no one-off price in the catalogue (stripe.oneOffPrice): a one-off payment cannot buy it',
    });
  });

  it("a Stripe Billing payment (no metadata) is resolved through the invoice it paid", () => {
    const e = envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', billing: true });
    expect(classifyEvent(e, plans)).toMatchObject({ action: 'resolve-payment', customerId: 'cus_1', paymentIntentId: (e.data.object as { id: string }).id });
  });

  it.each([
    ['a failed subscription payment (Stripe still retries; the status decides)', { type: 'payment_intent.payment_failed', plan: 'starter', subscription: 'sub_1' }, /status decides/],
    ['a failed payment with no plan', { type: 'payment_intent.payment_failed', billing: true }, /not a one-off payment/],
    ['an unknown plan', { type: 'payment_intent.succeeded', plan: 'gold' }, /"gold" is not a plan/],
    ['a malformed subscription id', { type: 'payment_intent.succeeded', plan: 'starter', subscription: 'nope' }, /not a Stripe subscription id/],
  ] as const)('ignores %s', (_what, input, reason) => {
    expect(classifyEvent(envelope({ ...input, customer: 'cus_1' }), plans)).toEqual({ action: 'ignore', reason: expect.stringMatching(reason) as unknown });
  });

  it('ignores a payment with no customer and an event type it does not handle', () => {
    expect(classifyEvent(envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'starter' }, (o) => (o.customer = null)), plans)).toMatchObject({ action: 'ignore', reason: /no customer/ });
    const other = stripeEventEnvelope.parse({ ...buildTestEvent({ type: 'invoice.paid', customer: 'cus_1' }), type: 'charge.refunded' });
    expect(classifyEvent(other, plans)).toEqual({ action: 'ignore', reason: 'event type charge.refunded is not handled' });
  });
});

describe('snapshotOfSubscription: the plan of a price', () => {
  const catalogue = loadPlanCatalogue(
    JSON.stringify(
      plans.ids().map((id) => ({ ...plans.get(id), ...(id === 'starter' ? { stripe: { lookupKeys: ['starter-monthly'], priceIds: ['price_1PgafmB7WZ01zgkW6dKueIc5'] } } : {}) })),
    ),
  );
  const sub = (price: Record<string, unknown>, metadata: Record<string, string> = {}) => ({ id: 'sub_1', customer: 'cus_1', status: 'active', metadata, items: { data: [{ price }] } });

  it('a listed lookup key, then a listed price id, then price or product metadata.plan', () => {
    expect(snapshotOfSubscription(sub({ id: 'price_x', lookup_key: 'starter-monthly' }), catalogue)).toMatchObject({ plan: 'starter' });
    expect(snapshotOfSubscription(sub({ id: 'price_1PgafmB7WZ01zgkW6dKueIc5', lookup_key: null }), catalogue)).toMatchObject({ plan: 'starter' });
    expect(snapshotOfSubscription(sub({ id: 'price_x', metadata: { plan: 'pro' } }), catalogue)).toMatchObject({ plan: 'pro' });
    expect(snapshotOfSubscription(sub({ id: 'price_x', product: { id: 'prod_1', metadata: { plan: 'enterprise' } } }), catalogue)).toMatchObject({ plan: 'enterprise' });
  });

  it('once any plan lists lookup keys, a lookup key equal to a plan id no longer selects it by name', () => {
    expect(snapshotOfSubscription(sub({ id: 'price_x', lookup_key: 'pro' }), catalogue)).toMatchObject({ planNote: expect.stringContaining('selects no plan') as unknown });
    expect(snapshotOfSubscription(sub({ id: 'price_x', lookup_key: 'pro' }), plans)).toMatchObject({ plan: 'pro' });
  });

  it('falls back to the subscription metadata.plan, and reports a shape it cannot read', () => {
    expect(snapshotOfSubscription(sub({ id: 'price_x' }, { plan: 'pro' }), plans)).toMatchObject({ plan: 'pro' });
    expect(snapshotOfSubscription({ id: 'nope' }, plans)).toEqual({ error: expect.stringContaining('not in the expected shape') as unknown });
  });
});

describe('snapshotOfSubscription in live mode: explicit price ids only', () => {
  const catalogue = loadPlanCatalogue(JSON.stringify(plans.ids().map((id) => ({ ...plans.get(id), ...(id === 'pro' ? { stripe: { lookupKeys: ['pro'], priceIds: ['price_pro_live'] } } : {}) }))));
  const sub = (price: Record<string, unknown>, metadata: Record<string, string> = {}) => ({ id: 'sub_1', customer: 'cus_1', status: 'active', metadata, items: { data: [{ price }] } });

  it('a listed price id selects its plan', () => {
    expect(snapshotOfSubscription(sub({ id: 'price_pro_live', currency: 'usd' }), catalogue, { livemode: true })).toMatchObject({ plan: 'pro', currency: 'usd' });
  });

  it.each([
    ['a lookup key equal to a plan id', { id: 'price_x', lookup_key: 'enterprise' }, {}],
    ['a listed lookup key on another price', { id: 'price_x', lookup_key: 'pro' }, {}],
    ['price metadata.plan', { id: 'price_x', metadata: { plan: 'enterprise' } }, {}],
    ['product metadata.plan', { id: 'price_x', product: { id: 'prod_1', metadata: { plan: 'enterprise' } } }, {}],
    ['subscription metadata.plan', { id: 'price_x' }, { plan: 'enterprise' }],
  ])('%s selects nothing', (_what, price, metadata) => {
    const snapshot = snapshotOfSubscription(sub(price, metadata), catalogue, { livemode: true });
    expect(snapshot).toMatchObject({ planNote: expect.stringContaining('in live mode only explicit price ids select a plan') as unknown });
    expect(snapshot).not.toHaveProperty('plan');
    // The same price in test mode still selects by name.
    expect(snapshotOfSubscription(sub(price, metadata), loadPlanCatalogue(), { livemode: false })).toHaveProperty('plan');
  });
});

describe('claimDisagreement: a payment naming a subscription against the subscription Stripe has', () => {
  const snapshot = { id: 'sub_1', customerId: 'cus_1', status: 'active', plan: 'starter', currency: 'usd' };
  const claim = { paymentIntentId: 'pi_1' };

  it('agrees when the metadata names nothing else, or the same plan and currency', () => {
    expect(claimDisagreement(claim, snapshot)).toBeUndefined();
    expect(claimDisagreement({ ...claim, plan: 'starter', currency: 'usd' }, snapshot)).toBeUndefined();
  });

  it.each([
    ['another plan', { plan: 'enterprise' }, {}, /names plan enterprise in its metadata, but subscription sub_1's price selects starter/],
    ['a plan when the price selects none', { plan: 'starter' }, { plan: undefined, planNote: 'price price_x selects no plan' }, /selects no plan \(price price_x/],
    ['another currency', { currency: 'eur' }, {}, /is in eur, but subscription sub_1's price is in usd/],
    ['a canceled subscription', {}, { status: 'canceled' }, /Stripe says is canceled: a payment does not revive it/],
    ['an expired subscription', {}, { status: 'incomplete_expired' }, /is incomplete_expired/],
  ])('disagrees on %s', (_what, claimed, actual, reason) => {
    expect(claimDisagreement({ ...claim, ...claimed }, { ...snapshot, ...actual })).toMatch(reason);
  });
});
