/**
 * Stripe Billing as Stripe sends it, on the real stack: events built from Stripe's own fixtures,
 * signed and posted to the API, subscriptions read from stripe-mock (Stripe's mock of its API),
 * the decisions delivered through the outbox to a real worker, and the results read back from
 * PostgreSQL and the Kubernetes API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { V1ResourceQuota } from '@kubernetes/client-node';
import { tenantIdForCustomer, tenantIdForSubscription } from '../../src/api/ids';
import type { TestEventInput } from '../../src/cli/send-test-event';
import { loadPlanCatalogue } from '../../src/plans';
import {
  FIXTURE_CUSTOMER,
  FIXTURE_PRICE_PLAN,
  SERVICE_TOKEN,
  TEST_PLANS_JSON,
  appDeployment,
  event,
  get,
  namespaceOf,
  newCustomer,
  newSubscription,
  post,
  postEvent,
  startApi,
  waitForNamespaceGone,
  waitForRowStatus,
  withApiStack,
  workflowRuns,
  type HttpAnswer,
} from './api-harness';
import { eventually, testDb, testKube, uniqueTaskQueue, useTemporalClient } from './helpers';

const plans = loadPlanCatalogue(TEST_PLANS_JSON);

/** The four events of a Checkout signup in subscription mode (API 2026-08-26.dahlia). */
function checkoutSignup(subscription: string, created: number, status = 'active'): Record<string, Record<string, unknown>> {
  const common = { customer: FIXTURE_CUSTOMER, subscription, created } satisfies Partial<TestEventInput>;
  return {
    checkout: event({ ...common, type: 'checkout.session.completed' }),
    created: event({ ...common, type: 'customer.subscription.created', status, plan: FIXTURE_PRICE_PLAN }),
    invoice: event({ ...common, type: 'invoice.paid' }),
    // Stripe Billing's PaymentIntent carries no metadata; its subscription is found through its invoice.
    payment: event({ ...common, type: 'payment_intent.succeeded', billing: true }),
  };
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

const accepted = (res: HttpAnswer) => {
  expect(res.status).toBe(200);
  return res.body;
};

describe('Stripe Billing on the real stack', () => {
  const db = testDb();
  const kube = testKube();
  const temporal = useTemporalClient();
  afterAll(() => db.$disconnect());

  const quota = (tenantId: string) =>
    kube.read<V1ResourceQuota & { apiVersion: string; kind: string }>({ apiVersion: 'v1', kind: 'ResourceQuota', name: 'tenant-quota', namespace: namespaceOf(tenantId) });
  const quotaOf = async (tenantId: string) => (await quota(tenantId))?.spec?.hard;
  const expectQuotaOf = async (tenantId: string, plan: string) => {
    const p = plans.get(plan);
    await eventually(async () => {
      const hard = await quotaOf(tenantId);
      return hard?.['limits.cpu'] === p.quota.limitsCpu && hard['limits.memory'] === p.quota.limitsMemory && hard.pods === String(p.quota.pods);
    }, 120_000, `quota of plan ${plan}`);
  };
  const appResourcesOf = async (tenantId: string) => (await appDeployment(kube, tenantId))?.spec?.template.spec?.containers[0]?.resources;

  it('a Checkout signup provisions one tenant on the price\'s plan whatever order its four events arrive in (all 24 orders, with redeliveries)', async () => {
    // Decisions only: the outbox is not delivered, so each order's effect is read from PostgreSQL.
    const api = await startApi({ taskQueue: uniqueTaskQueue('billing-orders'), dispatcher: false });
    try {
      const now = Math.floor(Date.now() / 1000);
      const orders = permutations(['checkout', 'created', 'invoice', 'payment']);
      expect(orders).toHaveLength(24);
      await Promise.all(
        orders.map(async (order) => {
          const subscription = newSubscription();
          const tenantId = tenantIdForSubscription(subscription);
          const events = checkoutSignup(subscription, now);
          for (const name of order) {
            const [first, again] = await Promise.all([postEvent(api, events[name]!), postEvent(api, events[name]!)]);
            expect([accepted(first).outcome, accepted(again).outcome].filter((o) => o === 'duplicate')).toHaveLength(1);
          }
          expect(await db.tenant.findMany({ where: { id: tenantId }, select: { plan: true, status: true } })).toEqual([{ plan: FIXTURE_PRICE_PLAN, status: 'provisioning' }]);
          expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: subscription } })).toMatchObject({ status: 'active', plan: FIXTURE_PRICE_PLAN, tenantId });
          const queued = await db.outboxMessage.findMany({ where: { tenantId }, orderBy: { id: 'asc' } });
          // Every start is a signalWithStart on the tenant's one workflow id; nothing else is asked.
          expect(queued.length).toBeGreaterThanOrEqual(1);
          for (const q of queued) expect(q.payload).toMatchObject({ op: 'start', signal: 'resume', plan: FIXTURE_PRICE_PLAN, tenantId });
          // stripe-mock cannot link a PaymentIntent to a subscription invoice: that payment is recorded, not applied.
          const payment = await db.stripeEvent.findUniqueOrThrow({ where: { id: String(events.payment!.id) } });
          expect(payment).toMatchObject({ outcome: 'ignored', detail: expect.stringMatching(/paid no subscription invoice/) as unknown });
        }),
      );
    } finally {
      await api.close();
    }
  });

  it('end to end: payment first, invoice first and subscription first all give one active tenant with the plan\'s quota', () =>
    withApiStack({ prefix: 'billing-e2e', db, client: temporal.client }, async ({ api, track }) => {
      const now = Math.floor(Date.now() / 1000);
      const orders = [
        ['payment', 'invoice', 'created', 'checkout'],
        ['invoice', 'checkout', 'payment', 'created'],
        ['created', 'payment', 'checkout', 'invoice'],
      ];
      const subscriptions = orders.map(() => newSubscription());
      await Promise.all(
        orders.map(async (order, i) => {
          const events = checkoutSignup(subscriptions[i]!, now);
          for (const name of order) accepted(await postEvent(api, events[name]!));
          // Stripe redelivers the whole lot later: nothing changes.
          for (const name of order) expect(accepted(await postEvent(api, events[name]!)).outcome).toBe('duplicate');
        }),
      );
      for (const subscription of subscriptions) {
        const tenantId = track(tenantIdForSubscription(subscription));
        await waitForRowStatus(db, tenantId, 'active');
        await expectQuotaOf(tenantId, FIXTURE_PRICE_PLAN);
        expect(await workflowRuns(temporal.client, tenantId)).toBe(1);
        expect(await db.tenantStep.count({ where: { tenantId, step: 'recordTenant', phase: 'succeeded' } })).toBe(1);
      }
      for (const subscription of subscriptions) {
        await postEvent(api, event({ type: 'customer.subscription.deleted', customer: FIXTURE_CUSTOMER, subscription }));
      }
      for (const subscription of subscriptions) await waitForNamespaceGone(kube, tenantIdForSubscription(subscription));
    }), 300_000);

  it('a trial (trialing subscription and a $0 invoice, no PaymentIntent) becomes active', () =>
    withApiStack({ prefix: 'billing-trial', db, client: temporal.client }, async ({ api, track }) => {
      const subscription = newSubscription();
      const tenantId = track(tenantIdForSubscription(subscription));
      const now = Math.floor(Date.now() / 1000);
      const trial = accepted(await postEvent(api, event({ type: 'customer.subscription.created', customer: FIXTURE_CUSTOMER, subscription, status: 'trialing', plan: FIXTURE_PRICE_PLAN, created: now })));
      expect(trial).toMatchObject({ outcome: 'queued', tenantId, detail: expect.stringMatching(/trialing: tenant provisioned on plan starter/) as unknown });
      accepted(await postEvent(api, event({ type: 'invoice.paid', customer: FIXTURE_CUSTOMER, subscription, amount: 0, created: now })));
      await waitForRowStatus(db, tenantId, 'active');
      expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: subscription } })).toMatchObject({ tenantId });

      await postEvent(api, event({ type: 'customer.subscription.deleted', customer: FIXTURE_CUSTOMER, subscription }));
      await waitForNamespaceGone(kube, tenantId);
    }), 300_000);

  it('dunning follows the subscription: past_due keeps running, unpaid scales to zero, paid again runs; late deliveries change nothing', () =>
    withApiStack({ prefix: 'billing-dunning', db, client: temporal.client }, async ({ api, track }) => {
      const customer = newCustomer();
      const subscription = newSubscription();
      const tenantId = track(tenantIdForSubscription(subscription));
      const now = Math.floor(Date.now() / 1000);
      const replicas = plans.get('pro').app.replicas;
      const sub = (status: string, created: number) => event({ type: 'customer.subscription.updated', customer, subscription, status, plan: 'pro', created });

      accepted(await postEvent(api, event({ type: 'customer.subscription.created', customer, subscription, plan: 'pro', created: now - 50 })));
      await waitForRowStatus(db, tenantId, 'active');

      // The first failed renewal: the payment fails, the subscription goes past_due, Stripe retries.
      const failedPayment = event({ type: 'payment_intent.payment_failed', customer, subscription, plan: 'pro', created: now - 41 });
      const pastDue = sub('past_due', now - 40);
      expect(accepted(await postEvent(api, pastDue)).outcome).toBe('recorded');
      expect(accepted(await postEvent(api, failedPayment)).outcome).toBe('ignored');
      expect(await db.tenant.findUniqueOrThrow({ where: { id: tenantId } })).toMatchObject({ status: 'active' });
      expect((await appDeployment(kube, tenantId))?.spec?.replicas).toBe(replicas);

      // Retries exhausted: unpaid. Delivered before a late past_due of the same episode.
      const unpaid = sub('unpaid', now - 20);
      expect(accepted(await postEvent(api, unpaid)).outcome).toBe('queued');
      expect(accepted(await postEvent(api, sub('past_due', now - 30))).outcome).toBe('ignored');
      await waitForRowStatus(db, tenantId, 'suspended');
      await eventually(async () => (await appDeployment(kube, tenantId))?.spec?.replicas === 0, 60_000, 'replicas 0');

      // Paid again: active. A late unpaid from before is ignored.
      expect(accepted(await postEvent(api, sub('active', now - 10))).outcome).toBe('queued');
      expect(accepted(await postEvent(api, sub('unpaid', now - 15))).outcome).toBe('ignored');
      await waitForRowStatus(db, tenantId, 'active');
      await eventually(async () => (await appDeployment(kube, tenantId))?.spec?.replicas === replicas, 60_000, `replicas ${replicas}`);
      expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: subscription } })).toMatchObject({ status: 'active' });
      expect(await workflowRuns(temporal.client, tenantId)).toBe(1);

      await postEvent(api, event({ type: 'customer.subscription.deleted', customer, subscription }));
      await waitForNamespaceGone(kube, tenantId);
    }), 300_000);

  it('a one-off customer\'s older payment failure delivered after a newer success does not suspend', () =>
    withApiStack({ prefix: 'billing-oneoff', db, client: temporal.client }, async ({ api, track }) => {
      const customer = newCustomer();
      const tenantId = track(tenantIdForCustomer(customer));
      const now = Math.floor(Date.now() / 1000);
      const failed = event({ type: 'payment_intent.payment_failed', customer, plan: 'starter', created: now - 60 });
      const paid = event({ type: 'payment_intent.succeeded', customer, plan: 'starter', created: now - 30 });
      expect(accepted(await postEvent(api, paid))).toMatchObject({ outcome: 'queued', tenantId });
      await waitForRowStatus(db, tenantId, 'active');
      expect(accepted(await postEvent(api, failed))).toMatchObject({ outcome: 'ignored', detail: expect.stringMatching(/older than the customer's newest payment event/) as unknown });
      // Nothing was queued for the late failure; the tenant stays up.
      expect(await db.outboxMessage.count({ where: { sourceId: String(failed.id) } })).toBe(0);
      expect(await db.tenant.findUniqueOrThrow({ where: { id: tenantId } })).toMatchObject({ status: 'active' });
      expect((await appDeployment(kube, tenantId))?.spec?.replicas).toBe(plans.get('starter').app.replicas);

      // A newer failure does suspend: the rule is ordering, not "failures never count".
      expect(accepted(await postEvent(api, event({ type: 'payment_intent.payment_failed', customer, plan: 'starter', created: now }))).outcome).toBe('queued');
      await waitForRowStatus(db, tenantId, 'suspended');

      expect((await post({ url: api.adminUrl }, '/api/tenants/deprovision', { tenantId, reason: 'test done' }, { token: SERVICE_TOKEN, idempotencyKey: `done-${tenantId}` })).status).toBe(202);
      await waitForNamespaceGone(kube, tenantId);
    }), 300_000);

  it('a price change moves the quota and the app\'s resources up, then back down', () =>
    withApiStack({ prefix: 'billing-plan', db, client: temporal.client }, async ({ api, track }) => {
      const customer = newCustomer();
      const subscription = newSubscription();
      const tenantId = track(tenantIdForSubscription(subscription));
      const now = Math.floor(Date.now() / 1000);
      const withPlan = (plan: string, created: number) => event({ type: 'customer.subscription.updated', customer, subscription, plan, created });

      accepted(await postEvent(api, event({ type: 'customer.subscription.created', customer, subscription, plan: 'starter', created: now - 30 })));
      await waitForRowStatus(db, tenantId, 'active');
      await expectQuotaOf(tenantId, 'starter');

      expect(accepted(await postEvent(api, withPlan('pro', now - 20))).outcome).toBe('queued');
      await expectQuotaOf(tenantId, 'pro');
      await eventually(async () => (await appResourcesOf(tenantId))?.limits?.cpu === plans.get('pro').app.limitsCpu, 120_000, 'app on pro resources');

      expect(accepted(await postEvent(api, withPlan('starter', now - 10))).outcome).toBe('queued');
      await expectQuotaOf(tenantId, 'starter');
      await eventually(async () => (await appResourcesOf(tenantId))?.limits?.cpu === plans.get('starter').app.limitsCpu, 120_000, 'app on starter resources');
      await eventually(async () => (await db.tenant.findUnique({ where: { id: tenantId } }))?.plan === 'starter', 60_000, 'tenant row on starter');

      await postEvent(api, event({ type: 'customer.subscription.deleted', customer, subscription }));
      await waitForNamespaceGone(kube, tenantId);
    }), 300_000);

  it('guards: an event of the other mode is ignored; a customer cannot touch another customer\'s subscription', async () => {
    const api = await startApi({ taskQueue: uniqueTaskQueue('billing-guards'), dispatcher: false });
    try {
      const owner = newCustomer();
      const subscription = newSubscription();
      const live = event({ type: 'customer.subscription.created', customer: owner, subscription, plan: 'starter', livemode: true });
      expect(accepted(await postEvent(api, live))).toMatchObject({ outcome: 'ignored', detail: expect.stringMatching(/live-mode event reached a test-mode deployment/) as unknown });
      expect(await db.tenant.count({ where: { id: tenantIdForSubscription(subscription) } })).toBe(0);

      const now = Math.floor(Date.now() / 1000);
      expect(accepted(await postEvent(api, event({ type: 'customer.subscription.created', customer: owner, subscription, plan: 'starter', created: now - 10 }))).outcome).toBe('queued');
      const intruder = newCustomer();
      const hijack = await postEvent(api, event({ type: 'customer.subscription.updated', customer: intruder, subscription, plan: 'pro', status: 'canceled', created: now }));
      expect(accepted(hijack)).toMatchObject({ outcome: 'ignored', detail: expect.stringMatching(/belongs to .*another customer|belongs to customer/) as unknown });
      expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: subscription } })).toMatchObject({ status: 'active', plan: 'starter' });
      // The subscription read from the API must be the event's customer's too.
      const foreign = await postEvent(api, event({ type: 'invoice.paid', customer: newCustomer(), subscription: newSubscription() }));
      expect(accepted(foreign)).toMatchObject({ outcome: 'ignored', detail: expect.stringMatching(new RegExp(`belongs to customer ${FIXTURE_CUSTOMER}, not to the event's`)) as unknown });
    } finally {
      await api.close();
    }
  });

  it('an operator reprocesses a recorded event by its id: fetched again from the Stripe API and applied', async () => {
    const subscription = newSubscription();
    const tenantId = tenantIdForSubscription(subscription);
    const missed = event({ type: 'customer.subscription.created', customer: newCustomer(), subscription, plan: 'pro' });
    const stripe = await startStripeMockServing(missed);
    const api = await startApi({ taskQueue: uniqueTaskQueue('billing-reprocess'), dispatcher: false, stripeApiBase: stripe.url });
    const admin = { url: api.adminUrl };
    try {
      // The event met an outage: recorded as received, never decided (as after 503s until Stripe gave up).
      await db.stripeEvent.create({ data: { id: String(missed.id), type: String(missed.type), stripeCreatedAt: new Date(Number(missed.created) * 1000), outcome: 'received', attempts: 7 } });
      const stuck = await get<{ events: Array<{ id: string }> }>(admin, '/api/events?outcome=received&limit=500', SERVICE_TOKEN);
      expect(stuck.status).toBe(200);
      expect(stuck.body.events.map((e) => e.id)).toContain(missed.id);

      const res = await post(admin, `/api/events/${String(missed.id)}/reprocess`, {}, { token: SERVICE_TOKEN });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ eventId: missed.id, outcome: 'queued', tenantId, reprocessed: true });
      expect(await db.tenant.findUniqueOrThrow({ where: { id: tenantId } })).toMatchObject({ plan: 'pro', status: 'provisioning' });
      const one = await get<{ outcome: string; outbox: unknown[] }>(admin, `/api/events/${String(missed.id)}`, SERVICE_TOKEN);
      expect(one.body).toMatchObject({ outcome: 'queued', outbox: [expect.objectContaining({ payload: expect.objectContaining({ op: 'start', plan: 'pro' }) as unknown })] });

      // Reprocessing again decides again and changes nothing: the subscription is already live on pro.
      expect((await post(admin, `/api/events/${String(missed.id)}/reprocess`, {}, { token: SERVICE_TOKEN })).body).toMatchObject({ outcome: 'recorded' });
      expect(await db.outboxMessage.count({ where: { tenantId } })).toBe(1);
      // An id Stripe does not know is refused; only the service may reprocess.
      expect((await post(admin, '/api/events/nope/reprocess', {}, { token: SERVICE_TOKEN })).status).toBe(400);
      expect((await post(admin, `/api/events/${String(missed.id)}/reprocess`, {})).status).toBe(401);
    } finally {
      await api.close();
      await stripe.stop();
      await db.outboxMessage.deleteMany({ where: { tenantId } });
    }
  });
});

/**
 * A second stripe-mock whose event fixture is `served`: Stripe's API as it would answer
 * `events.retrieve` for an event the webhook missed (stripe-mock reflects the requested id).
 */
async function startStripeMockServing(served: Record<string, unknown>): Promise<{ url: string; stop(): Promise<void> }> {
  const binary = findOnPath('stripe-mock');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stripe-mock-'));
  const fixturesFile = path.join(dir, 'fixtures.json');
  const bundled = JSON.parse(readFileSync(await bundledFixturesPath(), 'utf8')) as { resources: Record<string, unknown> };
  bundled.resources.event = served;
  writeFileSync(fixturesFile, JSON.stringify(bundled));
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const child: ChildProcess = spawn(binary, ['-http-addr', `127.0.0.1:${httpPort}`, '-https-addr', `127.0.0.1:${httpsPort}`, '-fixtures', fixturesFile], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${httpPort}`;
  await eventually(async () => (await fetch(`${url}/v1/customers/cus_ping`, { headers: { Authorization: 'Bearer sk_test_123' } }).catch(() => undefined))?.ok, 30_000, 'stripe-mock with the missed event');
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

function findOnPath(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  throw new Error(`${name} is not on PATH: run scripts/tools.sh install and source .stack/env`);
}

/** stripe-mock's bundled fixtures, from its module in the Go module cache (the pinned version). */
async function bundledFixturesPath(): Promise<string> {
  const pins = readFileSync(path.resolve(__dirname, '../../tools/versions.env'), 'utf8');
  const version = /^STRIPE_MOCK_VERSION=(\S+)/m.exec(pins)?.[1];
  const child = spawn('go', ['mod', 'download', '-json', `github.com/stripe/stripe-mock@v${version}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await once(child, 'exit');
  return path.join((JSON.parse(out) as { Dir: string }).Dir, 'embedded/openapi/fixtures3.json');
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

