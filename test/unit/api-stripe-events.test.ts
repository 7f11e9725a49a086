import { buildTestEvent, type TestEventInput } from '../../src/cli/send-test-event';
import { classifyEvent, stripeEventEnvelope, type StripeEventEnvelope } from '../../src/api/stripe-events';
import { loadPlanCatalogue } from '../../src/plans';

const plans = loadPlanCatalogue();

function envelope(input: TestEventInput, patch: (object: Record<string, unknown>) => void = () => undefined): StripeEventEnvelope {
  const e = buildTestEvent({ created: 1_700_000_000, ...input });
  patch((e.data as { object: Record<string, unknown> }).object);
  return stripeEventEnvelope.parse(e);
}

describe('stripeEventEnvelope', () => {
  it('accepts what Stripe sends and what the CLI builds', () => {
    expect(stripeEventEnvelope.safeParse(buildTestEvent({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'starter' })).success).toBe(true);
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

describe('classifyEvent', () => {
  it('maps a payment with a subscription id in its metadata to that subscription', () => {
    const result = classifyEvent(envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'pro', subscription: 'sub_1' }), plans);
    expect(result).toEqual({
      action: 'apply',
      intent: expect.objectContaining({
        kind: 'payment_succeeded',
        eventType: 'payment_intent.succeeded',
        customerId: 'cus_1',
        subscriptionId: 'sub_1',
        plan: 'pro',
        created: new Date(1_700_000_000_000),
      }) as unknown,
    });
  });

  it('finds the subscription of an expanded invoice when the metadata has none', () => {
    const e = envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'pro' }, (o) => {
      o.invoice = { id: 'in_1', parent: { subscription_details: { subscription: { id: 'sub_9' } } } };
    });
    expect(classifyEvent(e, plans)).toMatchObject({ action: 'apply', intent: { subscriptionId: 'sub_9' } });
  });

  it('maps a payment without any subscription to the customer (no subscriptionId)', () => {
    const result = classifyEvent(envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'starter' }), plans);
    expect(result.action).toBe('apply');
    expect(result.action === 'apply' && result.intent.subscriptionId).toBeFalsy();
  });

  it('accepts an expanded customer object', () => {
    const e = envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'starter' }, (o) => {
      o.customer = { id: 'cus_77', object: 'customer' };
    });
    expect(classifyEvent(e, plans)).toMatchObject({ action: 'apply', intent: { customerId: 'cus_77' } });
  });

  it.each([
    ['an unknown plan', (o: Record<string, unknown>) => (o.metadata = { plan: 'platinum' }), /"platinum" is not a plan of the catalogue \(starter, pro, enterprise\)/],
    ['no customer', (o: Record<string, unknown>) => (o.customer = null), /no customer/],
    ['a malformed customer', (o: Record<string, unknown>) => (o.customer = 42), /not in the expected shape: customer/],
    ['a subscription_id that is not one', (o: Record<string, unknown>) => (o.metadata = { plan: 'starter', subscription_id: 'nope' }), /not a Stripe subscription id/],
  ])('ignores a successful payment with %s, with the reason', (_what, patch, reason) => {
    const result = classifyEvent(envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'starter' }, patch), plans);
    expect(result).toEqual({ action: 'ignore', reason: expect.stringMatching(reason) as unknown });
  });

  it('leaves a missing plan for the lifecycle to decide (a renewal of a known subscription needs none)', () => {
    const result = classifyEvent(envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', subscription: 'sub_1' }), plans);
    expect(result).toMatchObject({ action: 'apply', intent: { kind: 'payment_succeeded', subscriptionId: 'sub_1' } });
    expect(result.action === 'apply' && result.intent.plan).toBeUndefined();
  });

  it('maps a failed invoice to its subscription (current and pre-2025 payload shapes)', () => {
    const current = classifyEvent(envelope({ type: 'invoice.payment_failed', customer: 'cus_1', subscription: 'sub_1', plan: 'pro' }), plans);
    expect(current).toMatchObject({ action: 'apply', intent: { kind: 'payment_failed', subscriptionId: 'sub_1', plan: 'pro', customerId: 'cus_1' } });
    const legacy = classifyEvent(
      envelope({ type: 'invoice.payment_failed', customer: 'cus_1' }, (o) => {
        o.parent = null;
        o.subscription = 'sub_2';
      }),
      plans,
    );
    expect(legacy).toMatchObject({ action: 'apply', intent: { kind: 'payment_failed', subscriptionId: 'sub_2' } });
  });

  it('keeps a failed payment with an unknown plan, noting it (the failure still matters)', () => {
    const result = classifyEvent(envelope({ type: 'payment_intent.payment_failed', customer: 'cus_1', plan: 'platinum', subscription: 'sub_1' }), plans);
    expect(result).toMatchObject({ action: 'apply', intent: { kind: 'payment_failed', note: 'unknown plan "platinum" ignored' } });
    expect(result.action === 'apply' && result.intent.plan).toBeUndefined();
  });

  it('reads a subscription update: metadata.plan, else the price lookup_key, else the price metadata', () => {
    const fromMetadata = envelope({ type: 'customer.subscription.updated', customer: 'cus_1', subscription: 'sub_1', plan: 'pro', status: 'past_due' });
    expect(classifyEvent(fromMetadata, plans)).toMatchObject({ action: 'apply', intent: { kind: 'subscription_updated', plan: 'pro', subscriptionStatus: 'past_due', subscriptionId: 'sub_1' } });

    const fromLookupKey = envelope({ type: 'customer.subscription.updated', customer: 'cus_1', subscription: 'sub_1', plan: 'enterprise' }, (o) => {
      o.metadata = {};
    });
    expect(classifyEvent(fromLookupKey, plans)).toMatchObject({ action: 'apply', intent: { plan: 'enterprise' } });

    const fromPriceMetadata = envelope({ type: 'customer.subscription.updated', customer: 'cus_1', subscription: 'sub_1' }, (o) => {
      o.items = { data: [{ price: { lookup_key: null, metadata: { plan: 'starter' } } }] };
    });
    expect(classifyEvent(fromPriceMetadata, plans)).toMatchObject({ action: 'apply', intent: { plan: 'starter' } });
  });

  it('treats a deleted subscription as canceled whatever its payload says', () => {
    const e = envelope({ type: 'customer.subscription.deleted', customer: 'cus_1', subscription: 'sub_1' }, (o) => {
      o.status = 'active';
    });
    expect(classifyEvent(e, plans)).toMatchObject({ action: 'apply', intent: { kind: 'subscription_deleted', subscriptionStatus: 'canceled' } });
  });

  it('ignores event types it does not handle', () => {
    const e = { ...envelope({ type: 'payment_intent.succeeded', customer: 'cus_1', plan: 'starter' }), type: 'charge.refunded' };
    expect(classifyEvent(e, plans)).toEqual({ action: 'ignore', reason: 'event type charge.refunded is not handled' });
  });
});
