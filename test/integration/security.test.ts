/**
 * Probes of an attacker with one foothold, each made against the real API on the real stack
 * (PostgreSQL, Temporal, stripe-mock), each refused with a reason and shown to change nothing.
 * docs/security.md lists them with the threat model.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { signPayload } from '../../src/cli/send-test-event';
import { tenantIdForCustomer, tenantIdForSubscription } from '../../src/api/ids';
import { createAdminApp } from '../../src/api/app';
import { problemType } from '../../src/api/problem';
import { createHttpServer } from '../../src/api/server';
import {
  FIXTURE_CUSTOMER,
  FIXTURE_PRICE_PLAN,
  JWT,
  SERVICE_TOKEN,
  WEBHOOK_SECRET,
  event,
  get,
  newCustomer,
  newSubscription,
  post,
  postEvent,
  startApi,
  type HttpAnswer,
  type RunningApi,
  userToken,
} from './api-harness';
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

  describe('a valid service token on the public port', () => {
    const NEW_TOKEN = randomBytes(32).toString('base64url');
    const NEW_SECRET = `whsec_new_${randomBytes(16).toString('hex')}`;
    let api: RunningApi;
    // A rotation in progress: the new and the old token, the new and the old signing secret.
    beforeAll(async () => {
      api = await startApi({ taskQueue: uniqueTaskQueue('sec-ports'), dispatcher: false, env: { SERVICE_TOKEN: `${NEW_TOKEN},${SERVICE_TOKEN}`, STRIPE_WEBHOOK_SECRET: `${NEW_SECRET},${WEBHOOK_SECRET}` } });
    });
    afterAll(() => api.close());
    const admin = () => ({ url: api.adminUrl });
    const slugOf = (res: HttpAnswer) => String(res.body.type);

    it.each([
      ['GET', '/api/tenants'],
      ['GET', '/api/events'],
      ['GET', '/api/events/evt_probe'],
      ['POST', '/api/events/evt_probe/reprocess'],
      ['POST', '/api/tenants/deprovision'],
    ] as const)('%s %s: 404, served on the admin port only', async (method, path) => {
      const res = method === 'GET' ? await get(api, path, SERVICE_TOKEN) : await post(api, path, { tenantId: randomUUID() }, { token: SERVICE_TOKEN, idempotencyKey: randomUUID() });
      expect([res.status, slugOf(res)]).toEqual([404, problemType('not-found')]);
      expect(res.body.detail).toBe(`${method} ${path} is served on the internal admin port only (ADMIN_PORT), never on the public port`);
    });

    it('POST /api/tenants/provision: refused, and no tenant, no idempotency key and no outbox row exist', async () => {
      const user = await db.user.create({ data: { id: randomUUID() } });
      const tenantId = randomUUID();
      const key = randomUUID();
      const res = await post(api, '/api/tenants/provision', { userId: user.id, plan: 'enterprise', tenantId }, { token: SERVICE_TOKEN, idempotencyKey: key });
      expect([res.status, res.body.detail]).toEqual([404, 'POST /api/tenants/provision is served on the internal admin port only (ADMIN_PORT), never on the public port']);
      expect(await db.tenant.findUnique({ where: { id: tenantId } })).toBeNull();
      expect(await db.idempotencyKey.findUnique({ where: { key } })).toBeNull();
      expect(await db.outboxMessage.count({ where: { tenantId } })).toBe(0);
      // The same request on the admin port is served (the control).
      const served = await post(admin(), '/api/tenants/provision', { userId: user.id, plan: 'starter', tenantId }, { token: NEW_TOKEN, idempotencyKey: key });
      expect([served.status, served.body.tenantId]).toEqual([202, tenantId]);
      await db.outboxMessage.deleteMany({ where: { tenantId } });
    });

    it("a user's route with the service token: 403, naming the admin port", async () => {
      const res = await get(api, `/api/tenants/${randomUUID()}`, SERVICE_TOKEN);
      expect([res.status, slugOf(res), res.body.detail]).toEqual([403, problemType('forbidden'), 'the service token is not a user token; the service token is accepted on the internal admin port only']);
    });

    it('/metrics and /readyz are not on the public port; they are on the admin port', async () => {
      for (const path of ['/metrics', '/readyz']) {
        const res = await get(api, path);
        expect([res.status, res.body.detail]).toEqual([404, `GET ${path} is served on the internal admin port only (ADMIN_PORT), never on the public port`]);
      }
      expect((await get(admin(), '/readyz')).status).toBe(200);
      const scraped = await fetch(`${api.adminUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toMatch(/^# HELP /m);
    });

    it('the public OpenAPI document lists public routes only; the admin one lists the moved routes', async () => {
      const pub = await get<{ paths: Record<string, Record<string, { security: unknown[] }>> }>(api, '/openapi.json');
      expect(Object.keys(pub.body.paths).sort()).toEqual(['/api/tenants/status', '/api/tenants/{tenantId}', '/healthz', '/openapi.json', '/webhooks/stripe']);
      expect(JSON.stringify(Object.values(pub.body.paths).flatMap((ops) => Object.values(ops).map((o) => o.security)))).not.toContain('serviceToken');
      const adm = await get<{ paths: Record<string, unknown> }>(admin(), '/openapi.json');
      expect(Object.keys(adm.body.paths)).toEqual(expect.arrayContaining(['/api/tenants', '/api/tenants/provision', '/api/tenants/deprovision', '/api/events', '/api/events/{eventId}/reprocess']));
    });

    it('during a rotation both service tokens work on the admin port, and nothing else does', async () => {
      expect((await get(admin(), '/api/tenants?limit=1', NEW_TOKEN)).status).toBe(200);
      expect((await get(admin(), '/api/tenants?limit=1', SERVICE_TOKEN)).status).toBe(200);
      const other = await get(admin(), '/api/tenants?limit=1', randomBytes(32).toString('base64url'));
      expect([other.status, slugOf(other)]).toEqual([401, problemType('invalid-token')]);
    });

    it('during a rotation a delivery signed with either webhook secret is accepted, and one signed with neither is refused', async () => {
      const customer = newCustomer();
      for (const secret of [NEW_SECRET, WEBHOOK_SECRET]) {
        const res = await postEvent(api, event({ type: 'payment_intent.succeeded', customer, plan: 'no-such-plan' }), { secret });
        expect([res.status, res.body.outcome]).toEqual([200, 'ignored']);
      }
      const forged = event({ type: 'payment_intent.succeeded', customer, plan: 'starter' });
      const res = await postEvent(api, forged, { secret: 'whsec_retired_long_ago' });
      expect([res.status, slugOf(res)]).toEqual([400, problemType('invalid-signature')]);
      expect(await db.stripeEvent.findUnique({ where: { id: String(forged.id) } })).toBeNull();
    });
  });

  describe('a doubled or stale timestamp, an old or everlasting token', () => {
    let api: RunningApi;
    beforeAll(async () => {
      api = await startApi({ taskQueue: uniqueTaskQueue('sec-time'), dispatcher: false });
    });
    afterAll(() => api.close());
    const now = () => Math.floor(Date.now() / 1000);

    it.each([
      ['a future t= in front of a correctly signed current header', (payload: string) => `t=${now() + 30 * 86_400},${signPayload(payload, WEBHOOK_SECRET)}`],
      ['a current t= in front of a header signed for a day ahead', (payload: string) => `t=${now()},${signPayload(payload, WEBHOOK_SECRET, now() + 86_400)}`],
    ])('%s: refused, nothing recorded', async (_what, header) => {
      const probe = event({ type: 'payment_intent.succeeded', customer: newCustomer(), plan: 'starter' });
      const res = await postEvent(api, probe, { signature: header(JSON.stringify(probe)) });
      expect([res.status, res.body.type, res.body.detail]).toEqual([400, problemType('invalid-signature'), 'the Stripe-Signature header has 2 t= timestamps; Stripe sends exactly one']);
      expect(await db.stripeEvent.findUnique({ where: { id: String(probe.id) } })).toBeNull();
    });

    it('a correctly signed header a day ahead alone: refused as stale, nothing recorded', async () => {
      const probe = event({ type: 'payment_intent.succeeded', customer: newCustomer(), plan: 'starter' });
      const res = await postEvent(api, probe, { timestamp: now() + 86_400 });
      expect([res.status, res.body.type]).toEqual([400, problemType('stale-signature')]);
      expect(await db.stripeEvent.findUnique({ where: { id: String(probe.id) } })).toBeNull();
    });

    it.each<[string, { iat?: number | null; exp?: number }, string]>([
      ['valid for 100 years', { exp: 100 * 365 * 86_400 }, 'the token claims a lifetime (exp - iat) over 86400 s'],
      ['without iat', { iat: null }, 'the token has no iat claim'],
      ['issued two days ago, still unexpired', { iat: -2 * 86_400 }, 'the token was issued more than 86400 s ago (its iat)'],
    ])('a user token %s: 401 with the reason', async (_what, spec, reason) => {
      const user = await db.user.create({ data: { id: randomUUID() } });
      const jwt = new SignJWT({ ...(spec.iat === null ? {} : { iat: now() + (spec.iat ?? 0) }) })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(user.id)
        .setIssuer(JWT.issuer)
        .setAudience(JWT.audience)
        .setExpirationTime(now() + (spec.exp ?? 3600));
      const token = await jwt.sign(new TextEncoder().encode(JWT.secret));
      const res = await get(api, '/api/tenants/status', token);
      expect([res.status, res.body.type, res.body.detail]).toEqual([401, problemType('invalid-token'), reason]);
      // The control: a fresh token of the same user.
      expect((await get(api, '/api/tenants/status', await userToken(user.id))).status).toBe(200);
    });
  });

  describe('Stripe Connect and live-mode price selection', () => {
    let api: RunningApi;
    let live: RunningApi;
    beforeAll(async () => {
      api = await startApi({ taskQueue: uniqueTaskQueue('sec-connect'), dispatcher: false, env: { STRIPE_CONNECT_ACCOUNTS: 'acct_allowed1' } });
      live = await startApi({ taskQueue: uniqueTaskQueue('sec-live'), dispatcher: false, env: { STRIPE_MODE: 'live' } });
    });
    afterAll(() => Promise.all([api.close(), live.close()]));

    it('an event of a Connect account not on the allow-list: refused, unchanged; an allowed account is acted on', async () => {
      const customer = newCustomer();
      const probe: Record<string, unknown> = { ...event({ type: 'payment_intent.succeeded', customer, plan: 'enterprise' }), account: 'acct_attacker' };
      await expectRefusedAndUnchanged(await postEvent(api, probe), { eventId: probe.id, tenantId: tenantIdForCustomer(customer), customer }, /an event of Stripe Connect account "acct_attacker", which is not in STRIPE_CONNECT_ACCOUNTS/);
      // Without an allow-list every connected account is refused.
      const other = newCustomer();
      const unlisted: Record<string, unknown> = { ...event({ type: 'payment_intent.succeeded', customer: other, plan: 'starter' }), account: 'acct_allowed1' };
      await expectRefusedAndUnchanged(await postEvent(live, { ...unlisted, livemode: true }), { eventId: unlisted.id, tenantId: tenantIdForCustomer(other), customer: other }, /not in STRIPE_CONNECT_ACCOUNTS/);

      const allowed = { ...event({ type: 'payment_intent.succeeded', customer, plan: 'enterprise' }), account: 'acct_allowed1' };
      expect((await postEvent(api, allowed)).body).toMatchObject({ outcome: 'queued', tenantId: tenantIdForCustomer(customer) });
      // An allowed account's subscription is read from the Stripe API as that account.
      const subscription = newSubscription();
      const invoice = { ...event({ type: 'invoice.paid', customer: FIXTURE_CUSTOMER, subscription }), account: 'acct_allowed1' };
      expect((await postEvent(api, invoice)).body).toMatchObject({ outcome: 'queued', tenantId: tenantIdForSubscription(subscription) });
    });

    it('live mode: a price whose lookup_key is a plan id (and listed as a lookup key) selects nothing; only a listed price id does', async () => {
      const subscription = newSubscription();
      const probe = event({ type: 'customer.subscription.created', customer: newCustomer(), subscription, plan: 'enterprise', livemode: true });
      const price = ((probe.data as { object: { items: { data: Array<{ price: { id: string } }> } } }).object.items.data[0]!.price);
      price.id = 'price_attackers_own';
      await expectRefusedAndUnchanged(
        await postEvent(live, probe),
        { eventId: probe.id, tenantId: tenantIdForSubscription(subscription), subscription },
        /no plan is known for it \(no plan: price price_attackers_own is in no plan's stripe.priceIds .*in live mode only explicit price ids select a plan\)/,
      );
      // The control: the catalogue's price id selects its plan, whatever the lookup key says.
      const listed = newSubscription();
      const res = await postEvent(live, event({ type: 'customer.subscription.created', customer: newCustomer(), subscription: listed, plan: 'enterprise', livemode: true }));
      expect(res.body).toMatchObject({ outcome: 'queued', tenantId: tenantIdForSubscription(listed) });
      expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: listed } })).toMatchObject({ plan: FIXTURE_PRICE_PLAN });
    });
  });

  describe('a flood of readiness probes', () => {
    it('200 concurrent GET /readyz on the admin port cost one PostgreSQL query and one Temporal call (READY_CACHE_MS 1000)', async () => {
      const api = await startApi({ taskQueue: uniqueTaskQueue('sec-ready'), dispatcher: false });
      const counted = { queries: 0, pings: 0 };
      const { deps } = api.runtime;
      // The real PostgreSQL and Temporal behind counters.
      const db = new Proxy(deps.db, {
        get: (target, prop, receiver) => {
          const value: unknown = Reflect.get(target, prop, receiver);
          if (prop !== '$queryRaw' || typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            counted.queries += 1;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
      const workflows = { ...deps.workflows, ping: (ms: number) => ((counted.pings += 1), deps.workflows.ping(ms)) };
      const server = createHttpServer(createAdminApp({ ...deps, db, workflows, readyCacheMs: 1_000 }));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`;
      try {
        await fetch(url); // connect the pool and Temporal first
        await new Promise((r) => setTimeout(r, 1_100));
        const before = { ...counted };
        const answers = await Promise.all(Array.from({ length: 200 }, () => fetch(url, { signal: AbortSignal.timeout(10_000) }).then((r) => r.status)));
        expect(answers.filter((s) => s === 200)).toHaveLength(200);
        // Every probe arrived within a second or two: at most one round per second of arrival.
        expect(counted.queries - before.queries).toBeLessThanOrEqual(2);
        expect(counted.pings - before.pings).toBeLessThanOrEqual(2);
        expect(counted.queries - before.queries).toBeGreaterThanOrEqual(1);
      } finally {
        await new Promise((r) => server.close(r));
        server.closeAllConnections();
        await api.close();
      }
    });
  });
});
