/**
 * The seed's stress test, end to end: 50 signups arrive at the webhook at once (each delivered
 * twice, as Stripe may), a real worker with 20 concurrent activities provisions them on the real
 * stack, and then 50 cancellations tear everything down. Bounded in time (15 minutes overall) but
 * no duration is asserted: this machine's speed is not the subject.
 */
import type { V1Deployment, V1LimitRange, V1Namespace, V1NetworkPolicy, V1ResourceQuota, V1Secret } from '@kubernetes/client-node';
import { tenantIdForSubscription } from '../../src/api/ids';
import { PROVISION_STEPS } from '../../src/contract';
import { NETWORK_POLICY_NAMES } from '../../src/k8s/network-policies';
import { LABEL_MANAGED_BY, LABEL_TENANT_ID, MANAGED_BY } from '../../src/k8s/labels';
import { loadPlanCatalogue } from '../../src/plans';
import { event, get, namespaceOf, newCustomer, newSubscription, postEvent, userToken, withApiStack, workflowRuns, type HttpAnswer, type StatusBody } from './api-harness';
import { eventually, testDb, testKube, useTemporalClient } from './helpers';

const SIGNUPS = 50;
const PLAN = 'starter';

jest.setTimeout(15 * 60_000);

describe('stress: concurrent signups through the webhook on the real stack', () => {
  const db = testDb();
  const kube = testKube();
  const temporal = useTemporalClient();
  afterAll(() => db.$disconnect());
  const plan = loadPlanCatalogue().get(PLAN);

  /** Stripe's delivery: retried until 2xx (a 503 under load is allowed, a lost event is not). */
  async function deliver(api: { url: string }, e: Record<string, unknown>, unavailable: { count: number }): Promise<HttpAnswer> {
    return eventually(async () => {
      const res = await postEvent(api, e);
      if (res.status === 503) unavailable.count += 1;
      else if (res.status !== 200) throw new Error(`unexpected ${res.status}: ${JSON.stringify(res.body)}`);
      return res.status === 200 ? res : undefined;
    }, 120_000, `delivery of ${String(e.id)}`);
  }

  /** Our tenants' namespaces, found by label (what a leak would leave behind). */
  async function ourNamespaces(tenantIds: Set<string>): Promise<V1Namespace[]> {
    const all = await kube.list<V1Namespace & { apiVersion: string; kind: string }>('v1', 'Namespace', undefined, `${LABEL_MANAGED_BY}=${MANAGED_BY}`);
    return all.filter((ns) => tenantIds.has(ns.metadata?.labels?.[LABEL_TENANT_ID] ?? ''));
  }

  it(`provisions ${SIGNUPS} concurrent signups exactly once each, then deprovisions them all without a trace`, () =>
    withApiStack({ prefix: 'stress', db, client: temporal.client, maxConcurrentActivityTaskExecutions: 20 }, async ({ api, track }) => {
      const signups = Array.from({ length: SIGNUPS }, () => ({ customer: newCustomer(), subscription: newSubscription() }));
      const tenantIds = signups.map((s) => track(tenantIdForSubscription(s.subscription)));
      const ids = new Set(tenantIds);
      const payments = signups.map((s) => event({ type: 'customer.subscription.created', customer: s.customer, plan: PLAN, subscription: s.subscription }));
      const unavailable = { count: 0 };

      // Every payment delivered twice, all at once.
      const answers = await Promise.all([...payments, ...payments].map((e) => deliver(api, e, unavailable)));
      const dispatched = answers.filter((a) => a.body.outcome === 'queued').map((a) => String(a.body.tenantId));
      expect(dispatched.sort()).toEqual([...tenantIds].sort());
      expect(answers.filter((a) => a.body.outcome === 'duplicate')).toHaveLength(SIGNUPS);

      // All end active; a failure stops the wait with its reason.
      await eventually(async () => {
        const rows = await db.tenant.findMany({ where: { id: { in: tenantIds } }, select: { id: true, status: true, lastError: true } });
        const failed = rows.find((r) => r.status === 'failed');
        if (failed) throw new Error(`tenant ${failed.id} failed: ${failed.lastError}`);
        return rows.length === SIGNUPS && rows.every((r) => r.status === 'active');
      }, 12 * 60_000, `${SIGNUPS} tenants active`);

      // Each user sees exactly their one active tenant through the API.
      const users = await db.user.findMany({ where: { stripeCustomerId: { in: signups.map((s) => s.customer) } } });
      expect(users).toHaveLength(SIGNUPS);
      const views = await Promise.all(users.map(async (u) => (await get<StatusBody>(api, '/api/tenants/status', await userToken(u.id))).body.tenants));
      for (const tenants of views) {
        expect(tenants).toHaveLength(1);
        expect(tenants[0]).toMatchObject({ status: 'active', plan: PLAN, progress: { completed: PROVISION_STEPS.length } });
      }

      // None duplicated: one event row, one subscription, one tenant row, one workflow run, one recordTenant each.
      expect(await db.stripeEvent.count({ where: { id: { in: payments.map((p) => String(p.id)) } } })).toBe(SIGNUPS);
      expect(await db.subscription.count({ where: { stripeSubscriptionId: { in: signups.map((s) => s.subscription) }, tenantId: { in: tenantIds } } })).toBe(SIGNUPS);
      expect(await db.tenant.count({ where: { userId: { in: users.map((u) => u.id) } } })).toBe(SIGNUPS);
      expect(await db.tenantStep.count({ where: { tenantId: { in: tenantIds }, step: 'recordTenant' } })).toBe(SIGNUPS);
      const runs = await Promise.all(tenantIds.map((id) => workflowRuns(temporal.client, id)));
      expect(runs).toEqual(Array(SIGNUPS).fill(1));

      // Nothing leaked and nothing missing: exactly our namespaces, each with exactly its objects.
      const namespaces = await ourNamespaces(ids);
      expect(namespaces.map((ns) => ns.metadata?.name).sort()).toEqual(tenantIds.map(namespaceOf).sort());
      for (const tenantId of tenantIds) {
        const ns = namespaceOf(tenantId);
        const [deployments, policies, quotas, limits, secrets] = await Promise.all([
          kube.list<V1Deployment & { apiVersion: string; kind: string }>('apps/v1', 'Deployment', ns),
          kube.list<V1NetworkPolicy & { apiVersion: string; kind: string }>('networking.k8s.io/v1', 'NetworkPolicy', ns),
          kube.list<V1ResourceQuota & { apiVersion: string; kind: string }>('v1', 'ResourceQuota', ns),
          kube.list<V1LimitRange & { apiVersion: string; kind: string }>('v1', 'LimitRange', ns),
          kube.list<V1Secret & { apiVersion: string; kind: string }>('v1', 'Secret', ns, `${LABEL_TENANT_ID}=${tenantId}`),
        ]);
        expect({ tenantId, deployments: deployments.length, ready: deployments[0]?.status?.readyReplicas, policies: policies.length, quotas: quotas.length, limits: limits.length, secrets: secrets.map((s) => s.metadata?.name) }).toEqual({
          tenantId,
          deployments: 1,
          ready: plan.app.replicas,
          policies: Object.keys(NETWORK_POLICY_NAMES).length,
          quotas: 1,
          limits: 1,
          secrets: ['tenant-credentials'],
        });
      }

      // Then every subscription is cancelled, all at once.
      const deletions = signups.map((s) => event({ type: 'customer.subscription.deleted', customer: s.customer, plan: PLAN, subscription: s.subscription }));
      const cancelled = await Promise.all(deletions.map((e) => deliver(api, e, unavailable)));
      expect(cancelled.map((a) => a.body.outcome)).toEqual(Array(SIGNUPS).fill('queued'));

      await eventually(async () => {
        const rows = await db.tenant.findMany({ where: { id: { in: tenantIds } }, select: { status: true } });
        return rows.every((r) => r.status === 'deprovisioned');
      }, 12 * 60_000, `${SIGNUPS} tenants deprovisioned`);
      expect(await ourNamespaces(ids)).toEqual([]);
      for (const tenantId of tenantIds) {
        expect(await kube.read({ apiVersion: 'v1', kind: 'Namespace', name: namespaceOf(tenantId) })).toBeUndefined();
      }
      expect(await db.subscription.count({ where: { stripeSubscriptionId: { in: signups.map((s) => s.subscription) }, status: 'canceled' } })).toBe(SIGNUPS);
      // 503s under load are allowed (Stripe retries); how many there were is worth seeing.
      if (unavailable.count > 0) console.log(`stress: ${unavailable.count} deliveries answered 503 and were retried`);
    }));
});
