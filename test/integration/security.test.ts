/**
 * Probes of an attacker with one foothold, each made against the real API on the real stack
 * (PostgreSQL, Temporal, stripe-mock), each refused with a reason and shown to change nothing.
 * docs/security.md lists them with the threat model.
 */
import { tenantIdForCustomer, tenantIdForSubscription } from '../../src/api/ids';
import { FIXTURE_CUSTOMER, FIXTURE_PRICE_PLAN, event, newCustomer, newSubscription, postEvent, startApi, type HttpAnswer, type RunningApi } from './api-harness';
import { testDb, uniqueTaskQueue } from './helpers';

describe('security probes on the real stack', () => {
  const db = testDb();
  afterAll(() => db.$disconnect());

  /** The event was recorded as ignored with `reason`, and nothing else of the probe exists. */
  async function expectRefusedAndUnchanged(res: HttpAnswer, probe: { eventId: unknown; tenantId: string; customer?: string; subscription?: string }, reason: RegExp): Promise<void> {
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'ignored', detail: expect.stringMatching(reason) as unknown });
    expect(await db.stripeEvent.findUniqueOrThrow({ where: { id: String(probe.eventId) } })).toMatchObject({ outcome: 'ignored', detail: expect.stringMatching(reason) as unknown });
    expect(await db.tenant.findUnique({ where: { id: probe.tenantId } })).toBeNull();
    expect(await db.outboxMessage.count({ where: { OR: [{ sourceId: String(probe.eventId) }, { tenantId: probe.tenantId }] } })).toBe(0);
    if (probe.subscription) expect(await db.subscription.findUnique({ where: { stripeSubscriptionId: probe.subscription } })).toBeNull();
    if (probe.customer && probe.customer !== FIXTURE_CUSTOMER) expect(await db.user.findUnique({ where: { stripeCustomerId: probe.customer } })).toBeNull();
  }

  describe('a signed but hostile PaymentIntent', () => {
    let api: RunningApi;
    // Decisions only: what an event would start is read from the outbox, which is not delivered.
    beforeAll(async () => {
      api = await startApi({ taskQueue: uniqueTaskQueue('sec-payments'), dispatcher: false });
    });
    afterAll(() => api.close());

    it("naming another customer's subscription that was never seen, on plan enterprise, for $0.50: refused, and the subscription's own events still apply", async () => {
      const attacker = newCustomer();
      const subscription = newSubscription();
      const tenantId = tenantIdForSubscription(subscription);
      const probe = event({ type: 'payment_intent.succeeded', customer: attacker, subscription, plan: 'enterprise', amount: 50 });
      // stripe-mock answers the subscription read with its fixture: the subscription is FIXTURE_CUSTOMER's.
      await expectRefusedAndUnchanged(await postEvent(api, probe), { eventId: probe.id, tenantId, customer: attacker, subscription }, new RegExp(`subscription ${subscription} belongs to customer ${FIXTURE_CUSTOMER}, not to the event's ${attacker}`));

      // Not claimed: the owner's subscription starts its tenant as before.
      const owner = await postEvent(api, event({ type: 'customer.subscription.created', customer: FIXTURE_CUSTOMER, subscription, plan: FIXTURE_PRICE_PLAN }));
      expect(owner.body).toMatchObject({ outcome: 'queued', tenantId });
      expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: subscription } })).toMatchObject({ plan: FIXTURE_PRICE_PLAN, tenantId });
    });

    it("naming the customer's own subscription with a plan its price does not select: refused", async () => {
      const subscription = newSubscription();
      const probe = event({ type: 'payment_intent.succeeded', customer: FIXTURE_CUSTOMER, subscription, plan: 'enterprise' });
      await expectRefusedAndUnchanged(
        await postEvent(api, probe),
        { eventId: probe.id, tenantId: tenantIdForSubscription(subscription), subscription },
        new RegExp(`names plan enterprise in its metadata, but subscription ${subscription}'s price selects ${FIXTURE_PRICE_PLAN}`),
      );
    });

    it("in another currency than the subscription's price: refused", async () => {
      const subscription = newSubscription();
      const probe = event({ type: 'payment_intent.succeeded', customer: FIXTURE_CUSTOMER, subscription, currency: 'eur' });
      await expectRefusedAndUnchanged(await postEvent(api, probe), { eventId: probe.id, tenantId: tenantIdForSubscription(subscription), subscription }, /is in eur, but subscription .* price is in usd/);
    });

    it('the control: a payment whose subscription the Stripe API confirms (customer, status, plan) is applied', async () => {
      const subscription = newSubscription();
      const res = await postEvent(api, event({ type: 'payment_intent.succeeded', customer: FIXTURE_CUSTOMER, subscription, plan: FIXTURE_PRICE_PLAN }));
      expect(res.body).toMatchObject({ outcome: 'queued', tenantId: tenantIdForSubscription(subscription) });
      expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: subscription } })).toMatchObject({ plan: FIXTURE_PRICE_PLAN, status: 'active' });
    });

    it.each([
      ['$0.50 for enterprise', { amount: 50 }, /a one-off payment of 50 usd does not match plan enterprise's price of 49900 usd/],
      ['the right amount in another currency', { currency: 'jpy' }, /49900 jpy does not match plan enterprise's price of 49900 usd/],
    ])('a one-off payment of %s: refused', async (_what, price, reason) => {
      const customer = newCustomer();
      const probe = event({ type: 'payment_intent.succeeded', customer, plan: 'enterprise', ...price });
      await expectRefusedAndUnchanged(await postEvent(api, probe), { eventId: probe.id, tenantId: tenantIdForCustomer(customer), customer }, reason);
    });

    it("the control: a one-off payment of exactly the plan's price is applied", async () => {
      const customer = newCustomer();
      const res = await postEvent(api, event({ type: 'payment_intent.succeeded', customer, plan: 'enterprise' }));
      expect(res.body).toMatchObject({ outcome: 'queued', tenantId: tenantIdForCustomer(customer) });
    });
  });
});
