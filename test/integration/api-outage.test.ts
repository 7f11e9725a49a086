/**
 * PostgreSQL, Temporal or the Stripe API goes away (a TCP proxy in front of each, stopped by the
 * test; the shared servers keep running). PostgreSQL, or the Stripe API when an event needs it:
 * the webhook answers 503 so that Stripe retries, and the redelivery provisions exactly once.
 * Temporal: the webhook keeps answering 2xx, the outbox holds the dispatch, and the tenant
 * provisions exactly once when Temporal is back.
 */
import { tenantIdForSubscription } from '../../src/api/ids';
import { problemType } from '../../src/api/problem';
import { tenantWorkflowId } from '../../src/contract';
import {
  FIXTURE_CUSTOMER,
  FIXTURE_PRICE_PLAN,
  event,
  get,
  newCustomer,
  newSubscription,
  postEvent,
  userToken,
  waitForApiStatus,
  waitForNamespaceGone,
  waitForRowStatus,
  withApiStack,
  workflowRuns,
  type HttpAnswer,
} from './api-harness';
import { env, eventually, newTenantId, testDb, testKube, useTemporalClient } from './helpers';
import { TcpProxy } from './tcp-proxy';

describe('the API when PostgreSQL or Temporal is unreachable (real stack behind TCP proxies)', () => {
  const db = testDb();
  const kube = testKube();
  const temporal = useTemporalClient();
  afterAll(() => db.$disconnect());

  const viaProxy = (databaseUrl: string, proxy: TcpProxy) => {
    const url = new URL(databaseUrl);
    url.host = proxy.address;
    return url.toString();
  };

  /** Stripe's behaviour: deliver again until the answer is 2xx. */
  const redeliverUntilAccepted = (api: { url: string }, e: Record<string, unknown>) =>
    eventually(async () => {
      const res = await postEvent(api, e);
      return res.status === 200 ? res : undefined;
    }, 60_000, 'the redelivered event to be accepted');

  const expectUnavailable = (res: HttpAnswer, dependency: string) => {
    expect(res.status).toBe(503);
    expect(res.contentType).toMatch(/^application\/problem\+json/);
    expect(res.headers.get('retry-after')).toBeTruthy();
    expect(res.body).toMatchObject({ type: problemType('dependency-unavailable'), status: 503, dependency });
  };

  it('PostgreSQL unreachable: not ready, 503 with nothing stored; after recovery the retry provisions once', async () => {
    const proxy = TcpProxy.forAddress(new URL(env('DATABASE_URL')).host);
    await proxy.start();
    try {
      await withApiStack({ prefix: 'api-pg-down', db, client: temporal.client, api: { databaseUrl: viaProxy(env('DATABASE_URL'), proxy), env: { READY_TIMEOUT_MS: '1500', READY_CACHE_MS: '0' } } }, async ({ api, track }) => {
        expect((await get({ url: api.adminUrl }, '/readyz')).status).toBe(200);
        const customer = newCustomer();
        const subscription = newSubscription();
        const tenantId = track(tenantIdForSubscription(subscription));
        const paid = event({ type: 'customer.subscription.created', customer, plan: 'starter', subscription });

        await proxy.stop();
        const ready = await get({ url: api.adminUrl }, '/readyz');
        expect(ready.status).toBe(503);
        expect(ready.body).toMatchObject({ type: problemType('not-ready'), failed: ['postgres'], checks: { postgres: { ok: false }, temporal: { ok: true } } });
        expect((await get(api, '/healthz')).status).toBe(200); // the process is fine: no restart wanted
        expectUnavailable(await postEvent(api, paid), 'postgres');
        expectUnavailable(await postEvent(api, paid), 'postgres');
        expect(await db.stripeEvent.count({ where: { id: String(paid.id) } })).toBe(0);
        await expect(temporal.client.workflow.getHandle(tenantWorkflowId(tenantId)).describe()).rejects.toThrow();

        await proxy.start();
        const accepted = await redeliverUntilAccepted(api, paid);
        expect(accepted.body).toMatchObject({ outcome: 'queued', tenantId });
        expect((await get({ url: api.adminUrl }, '/readyz')).status).toBe(200);

        const token = await userToken(String(accepted.body.userId));
        await waitForApiStatus(api, token, tenantId, 'active');
        expect(await db.stripeEvent.findUniqueOrThrow({ where: { id: String(paid.id) } })).toMatchObject({ outcome: 'queued', attempts: 1 });
        expect(await workflowRuns(temporal.client, tenantId)).toBe(1);
        expect(await db.tenant.count({ where: { id: tenantId } })).toBe(1);

        await postEvent(api, event({ type: 'customer.subscription.deleted', customer, subscription }));
        await waitForNamespaceGone(kube, tenantId);
      });
    } finally {
      await proxy.stop();
    }
  });

  it('Temporal unreachable: the webhook still answers 2xx and queues; once Temporal is back the tenant provisions exactly once', async () => {
    const proxy = TcpProxy.forAddress(env('TEMPORAL_ADDRESS'));
    await proxy.start();
    try {
      await withApiStack(
        { prefix: 'api-tmprl-down', db, client: temporal.client, api: { temporalAddress: proxy.address, env: { TEMPORAL_TIMEOUT_MS: '2000', READY_TIMEOUT_MS: '1500', READY_CACHE_MS: '0' } } },
        async ({ api, track }) => {
          expect((await get({ url: api.adminUrl }, '/readyz')).status).toBe(200);
          const customer = newCustomer();
          const subscription = newSubscription();
          const tenantId = track(tenantIdForSubscription(subscription));
          const paid = event({ type: 'customer.subscription.created', customer, plan: 'starter', subscription });

          await proxy.stop();
          // Still ready for Stripe's deliveries (load balancers keep sending), and says what is missing.
          const ready = await get({ url: api.adminUrl }, '/readyz');
          expect(ready.status).toBe(200);
          expect(ready.body).toMatchObject({ status: 'degraded', degraded: ['temporal'], checks: { postgres: { ok: true }, temporal: { ok: false } } });
          const accepted = await postEvent(api, paid);
          expect(accepted.status).toBe(200);
          expect(accepted.body).toMatchObject({ outcome: 'queued', tenantId });
          expect(await db.stripeEvent.findUniqueOrThrow({ where: { id: String(paid.id) } })).toMatchObject({ outcome: 'queued', attempts: 1 });
          expect(await db.tenant.findUniqueOrThrow({ where: { id: tenantId } })).toMatchObject({ status: 'provisioning' });
          // The dispatcher keeps trying, and says why it has not delivered.
          await eventually(async () => {
            const row = await db.outboxMessage.findFirst({ where: { sourceId: String(paid.id) } });
            return row && row.attempts >= 2 && row.deliveredAt === null && row.lastError ? row : undefined;
          }, 60_000, 'outbox row retried while Temporal is away');
          // A redelivery meanwhile is a duplicate: nothing is queued twice.
          expect((await postEvent(api, paid)).body).toMatchObject({ outcome: 'duplicate' });

          await proxy.start();
          const token = await userToken(String(accepted.body.userId));
          await waitForApiStatus(api, token, tenantId, 'active');
          expect(await workflowRuns(temporal.client, tenantId)).toBe(1);
          expect(await db.tenantStep.count({ where: { tenantId, step: 'recordTenant' } })).toBe(1);
          const rows = await db.outboxMessage.findMany({ where: { sourceId: String(paid.id) } });
          expect(rows).toHaveLength(1);
          expect(rows[0]).toMatchObject({ deliveredAt: expect.any(Date) as unknown, result: expect.stringMatching(/^signaled resume/) as unknown });

          await postEvent(api, event({ type: 'customer.subscription.deleted', customer, subscription }));
          await waitForNamespaceGone(kube, tenantId);
        },
      );
    } finally {
      await proxy.stop();
    }
  });

  it('the Stripe API unreachable when an event needs it: 503 and nothing decided; the redelivery provisions', async () => {
    const proxy = TcpProxy.forAddress(new URL(env('STRIPE_MOCK_URL')).host);
    await proxy.start();
    try {
      await withApiStack({ prefix: 'api-stripe-down', db, client: temporal.client, api: { stripeApiBase: `http://${proxy.address}` } }, async ({ api, track }) => {
        const subscription = newSubscription();
        const tenantId = track(tenantIdForSubscription(subscription));
        // invoice.paid names only its subscription: the webhook must read it from the Stripe API.
        const paid = event({ type: 'invoice.paid', customer: FIXTURE_CUSTOMER, subscription });

        await proxy.stop();
        expectUnavailable(await postEvent(api, paid), 'stripe');
        expect(await db.stripeEvent.findUniqueOrThrow({ where: { id: String(paid.id) } })).toMatchObject({ outcome: 'received' });
        expect(await db.tenant.count({ where: { id: tenantId } })).toBe(0);
        expect(await db.outboxMessage.count({ where: { sourceId: String(paid.id) } })).toBe(0);

        await proxy.start();
        const accepted = await redeliverUntilAccepted(api, paid);
        expect(accepted.body).toMatchObject({ outcome: 'queued', tenantId });
        await waitForRowStatus(db, tenantId, 'active');
        expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: subscription } })).toMatchObject({ status: 'active', plan: FIXTURE_PRICE_PLAN, tenantId });
        expect(await workflowRuns(temporal.client, tenantId)).toBe(1);

        await postEvent(api, event({ type: 'customer.subscription.deleted', customer: FIXTURE_CUSTOMER, subscription }));
        await waitForNamespaceGone(kube, tenantId);
      });
    } finally {
      await proxy.stop();
    }
  });

  it('serves health, readiness and Prometheus metrics', () =>
    withApiStack({ prefix: 'api-metrics', db, client: temporal.client }, async ({ api }) => {
      expect(await get(api, '/healthz').then((r) => [r.status, r.body])).toEqual([200, { status: 'ok' }]);
      const ready = await get({ url: api.adminUrl }, '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({ status: 'ready', checks: { postgres: { ok: true }, temporal: { ok: true } } });

      const ignored = event({ type: 'payment_intent.succeeded', customer: newCustomer(), plan: 'platinum' });
      await postEvent(api, ignored);
      await postEvent(api, ignored);
      await postEvent(api, 'not json', { signature: 'nope' });
      await get(api, '/api/tenants/status');
      await get(api, '/no/such/route');

      const metrics = await fetch(`${api.adminUrl}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await metrics.text();
      expect(text).toMatch(/^tenant_provisioner_http_request_duration_seconds_count\{method="POST",route="\/webhooks\/stripe",status_code="200"\} 2$/m);
      expect(text).toMatch(/^tenant_provisioner_http_request_duration_seconds_count\{method="GET",route="\/api\/tenants\/status",status_code="401"\} 1$/m);
      expect(text).toMatch(/^tenant_provisioner_http_request_duration_seconds_count\{method="GET",route="unmatched",status_code="404"\} 1$/m);
      expect(text).toMatch(/^tenant_provisioner_webhook_events_total\{type="payment_intent.succeeded",outcome="ignored"\} 1$/m);
      expect(text).toMatch(/^tenant_provisioner_webhook_events_total\{type="payment_intent.succeeded",outcome="duplicate"\} 1$/m);
      expect(text).toMatch(/^tenant_provisioner_webhook_events_total\{type="unverified",outcome="rejected"\} 1$/m);
      expect(text).not.toContain('/no/such/route');

      // Tenants by status, read from PostgreSQL at scrape time (other test files may change the
      // numbers concurrently, so each status is checked to be there and counted, not compared).
      const fixture = await db.tenant.create({ data: { id: newTenantId(), plan: 'starter', status: 'failed', workflowId: `tenant-metrics-${Date.now()}` } });
      try {
        const scraped = await (await fetch(`${api.adminUrl}/metrics`)).text();
        const rows = await db.tenant.groupBy({ by: ['status'], _count: { _all: true } });
        for (const r of rows) expect(scraped).toMatch(new RegExp(`^tenant_provisioner_tenants\\{status="${r.status}"\\} [1-9]\\d*$`, 'm'));
        expect(rows.map((r) => r.status)).toContain('failed');
        // Business gauges read at scrape time: present even when nothing is wrong, so alerts never go absent.
        expect(scraped).toMatch(/^tenant_provisioner_tenant_conditions\{condition="ChangeFailing"\} \d+$/m);
        expect(scraped).toMatch(/^tenant_provisioner_stripe_events_received \d+$/m);
        expect(scraped).toMatch(/^tenant_provisioner_stripe_events_received_oldest_age_seconds [\d.e+-]+$/m);
      } finally {
        await db.tenant.delete({ where: { id: fixture.id } });
      }
    }));
});
