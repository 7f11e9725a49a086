/**
 * Stripe → API → Temporal → Kubernetes, for real: signed webhook deliveries over HTTP to the API
 * (port 0), a real worker with the real activities, and the results read back from the status
 * endpoint, PostgreSQL and the Kubernetes API.
 */
import type { V1ResourceQuota } from '@kubernetes/client-node';
import { tenantIdForSubscription } from '../../src/api/ids';
import { PROVISION_STEPS } from '../../src/contract';
import { loadPlanCatalogue } from '../../src/plans';
import {
  appDeployment,
  event,
  get,
  namespaceOf,
  newCustomer,
  newSubscription,
  postEvent,
  readNamespace,
  userToken,
  waitForApiStatus,
  waitForNamespaceGone,
  waitForRowStatus,
  withApiStack,
  workflowRuns,
  type StatusBody,
  type TenantViewBody,
} from './api-harness';
import { eventually, testDb, testKube, useTemporalClient } from './helpers';

const plans = loadPlanCatalogue();

describe('Stripe webhook on the real stack', () => {
  const db = testDb();
  const kube = testKube();
  const temporal = useTemporalClient();
  afterAll(() => db.$disconnect());

  const stack = (prefix: string, fn: Parameters<typeof withApiStack>[1]) => withApiStack({ prefix, db, client: temporal.client }, fn);
  const userOf = async (customer: string) => (await db.user.findUniqueOrThrow({ where: { stripeCustomerId: customer } })).id;
  const quota = (tenantId: string) =>
    kube.read<V1ResourceQuota & { apiVersion: string; kind: string }>({ apiVersion: 'v1', kind: 'ResourceQuota', name: 'tenant-quota', namespace: namespaceOf(tenantId) });

  it('a new subscription provisions a tenant that the user sees active; its deletion deprovisions it', () =>
    stack('api-pay', async ({ api, track }) => {
      const customer = newCustomer();
      const subscription = newSubscription();
      const tenantId = track(tenantIdForSubscription(subscription));
      const paid = event({ type: 'customer.subscription.created', customer, plan: 'starter', subscription });

      const res = await postEvent(api, paid);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ received: true, eventId: paid.id, outcome: 'queued', tenantId });

      // Phase-2 links: the customer's user, the subscription's tenant.
      const userId = await userOf(customer);
      expect(res.body.userId).toBe(userId);
      expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: subscription } })).toMatchObject({
        userId,
        tenantId,
        plan: 'starter',
        status: 'active',
      });

      const token = await userToken(userId);
      const active = await waitForApiStatus(api, token, tenantId, 'active');
      expect(active).toMatchObject({
        plan: 'starter',
        namespace: namespaceOf(tenantId),
        currentStep: null,
        lastError: null,
        progress: { completed: PROVISION_STEPS.length, total: PROVISION_STEPS.length },
      });
      const one = await get<TenantViewBody>(api, `/api/tenants/${tenantId}`, token);
      expect(one.status).toBe(200);
      expect(one.body).toMatchObject({ tenantId, status: 'active', plan: 'starter' });
      expect(await readNamespace(kube, tenantId)).toBeDefined();
      expect((await appDeployment(kube, tenantId))?.status?.readyReplicas).toBe(plans.get('starter').app.replicas);
      expect(await db.stripeEvent.findUniqueOrThrow({ where: { id: String(paid.id) } })).toMatchObject({ outcome: 'queued', tenantId, attempts: 1 });

      const deleted = await postEvent(api, event({ type: 'customer.subscription.deleted', customer, plan: 'starter', subscription }));
      expect(deleted.status).toBe(200);
      expect(deleted.body).toMatchObject({ outcome: 'queued', tenantId });
      await waitForNamespaceGone(kube, tenantId);
      await waitForApiStatus(api, token, tenantId, 'deprovisioned');
      expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: subscription } })).toMatchObject({ status: 'canceled', tenantId });
    }));

  it('the same event delivered 10 times at once makes one tenant, one workflow and one stripe_events row', () =>
    stack('api-dup', async ({ api, track }) => {
      const customer = newCustomer();
      const subscription = newSubscription();
      const tenantId = track(tenantIdForSubscription(subscription));
      const paid = event({ type: 'customer.subscription.created', customer, plan: 'starter', subscription });

      const answers = await Promise.all(Array.from({ length: 10 }, () => postEvent(api, paid)));
      expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
      const outcomes = answers.map((a) => a.body.outcome).sort();
      expect(outcomes.filter((o) => o === 'queued')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(9);

      const token = await userToken(await userOf(customer));
      await waitForApiStatus(api, token, tenantId, 'active');
      expect(await db.stripeEvent.count({ where: { id: String(paid.id) } })).toBe(1);
      expect(await db.tenant.count({ where: { userId: await userOf(customer) } })).toBe(1);
      expect(await db.user.count({ where: { stripeCustomerId: customer } })).toBe(1);
      expect(await workflowRuns(temporal.client, tenantId)).toBe(1);
      // recordTenant ran once: one run, one audit row for it.
      expect(await db.tenantStep.count({ where: { tenantId, step: 'recordTenant' } })).toBe(1);

      // A redelivery after the fact is still a duplicate, and changes nothing.
      const later = await postEvent(api, paid);
      expect(later.body).toMatchObject({ outcome: 'duplicate' });
      expect(await workflowRuns(temporal.client, tenantId)).toBe(1);

      await postEvent(api, event({ type: 'customer.subscription.deleted', customer, subscription }));
      await waitForNamespaceGone(kube, tenantId);
    }));

  it('a deletion delivered before the subscription\'s creation leaves no live tenant, and the late creation is ignored', () =>
    stack('api-early-del', async ({ api, track }) => {
      const customer = newCustomer();
      const subscription = newSubscription();
      const tenantId = track(tenantIdForSubscription(subscription));
      const now = Math.floor(Date.now() / 1000);
      const paid = event({ type: 'customer.subscription.created', customer, plan: 'starter', subscription, created: now - 60 });
      const deleted = event({ type: 'customer.subscription.deleted', customer, plan: 'starter', subscription, created: now - 30 });

      const first = await postEvent(api, deleted);
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ outcome: 'queued', tenantId });
      const late = await postEvent(api, paid);
      expect(late.status).toBe(200);
      expect(late.body).toMatchObject({ outcome: 'ignored', tenantId });
      expect(String(late.body.detail)).toMatch(/canceled/);

      await waitForRowStatus(db, tenantId, 'deprovisioned');
      // No namespace was ever created: the deprovision signal was there before the first step.
      expect(await readNamespace(kube, tenantId)).toBeUndefined();
      const steps = await db.tenantStep.findMany({ where: { tenantId } });
      expect(steps.map((s) => s.step)).not.toContain('ensureNamespace');
      expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: subscription } })).toMatchObject({ status: 'canceled' });
      expect(await db.stripeEvent.findUniqueOrThrow({ where: { id: String(paid.id) } })).toMatchObject({ outcome: 'ignored' });
      const token = await userToken(await userOf(customer));
      const status = await get<StatusBody>(api, '/api/tenants/status', token);
      expect(status.body.tenants.map((t) => [t.tenantId, t.status])).toEqual([[tenantId, 'deprovisioned']]);
      expect(await workflowRuns(temporal.client, tenantId)).toBe(1);
    }));

  it('a plan upgrade re-sizes the ResourceQuota; an older update delivered late changes nothing', () =>
    stack('api-plan', async ({ api, track }) => {
      const customer = newCustomer();
      const subscription = newSubscription();
      const tenantId = track(tenantIdForSubscription(subscription));
      const now = Math.floor(Date.now() / 1000);
      await postEvent(api, event({ type: 'customer.subscription.created', customer, plan: 'starter', subscription, created: now - 10 }));
      const token = await userToken(await userOf(customer));
      await waitForApiStatus(api, token, tenantId, 'active');
      expect((await quota(tenantId))?.spec?.hard).toMatchObject({ 'limits.cpu': plans.get('starter').quota.limitsCpu, pods: String(plans.get('starter').quota.pods) });

      const upgrade = await postEvent(api, event({ type: 'customer.subscription.updated', customer, plan: 'pro', subscription, created: now }));
      expect(upgrade.body).toMatchObject({ outcome: 'queued' });
      const pro = plans.get('pro');
      await eventually(async () => {
        const hard = (await quota(tenantId))?.spec?.hard;
        return hard?.['limits.cpu'] === pro.quota.limitsCpu && hard['limits.memory'] === pro.quota.limitsMemory && hard.pods === String(pro.quota.pods);
      }, 120_000, 'quota of plan pro');
      await eventually(async () => (await db.tenant.findUnique({ where: { id: tenantId } }))?.plan === 'pro', 60_000, 'tenant row on plan pro');

      // Stripe delivers an older update (back to starter) late: it is recorded and ignored.
      const stale = await postEvent(api, event({ type: 'customer.subscription.updated', customer, plan: 'starter', subscription, created: now - 5 }));
      expect(stale.body).toMatchObject({ outcome: 'ignored' });
      expect(String(stale.body.detail)).toMatch(/older than the newest event/);
      expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: subscription } })).toMatchObject({ plan: 'pro' });
      expect((await quota(tenantId))?.spec?.hard?.['limits.cpu']).toBe(pro.quota.limitsCpu);

      await postEvent(api, event({ type: 'customer.subscription.deleted', customer, subscription }));
      await waitForNamespaceGone(kube, tenantId);
    }));

  it('a failed subscription payment alone suspends nothing; unpaid scales the app to zero; active again brings the replicas back', () =>
    stack('api-suspend', async ({ api, track }) => {
      const customer = newCustomer();
      const subscription = newSubscription();
      const tenantId = track(tenantIdForSubscription(subscription));
      const now = Math.floor(Date.now() / 1000);
      const replicas = plans.get('pro').app.replicas;
      await postEvent(api, event({ type: 'customer.subscription.created', customer, plan: 'pro', subscription, created: now - 30 }));
      const token = await userToken(await userOf(customer));
      await waitForApiStatus(api, token, tenantId, 'active');
      expect((await appDeployment(kube, tenantId))?.spec?.replicas).toBe(replicas);

      // Stripe retries a failed renewal while the subscription is past_due: the tenant keeps running.
      const failed = await postEvent(api, event({ type: 'payment_intent.payment_failed', customer, plan: 'pro', subscription, created: now - 25 }));
      expect(failed.body).toMatchObject({ outcome: 'ignored', detail: expect.stringMatching(/status decides/) as unknown });
      const pastDue = await postEvent(api, event({ type: 'customer.subscription.updated', customer, plan: 'pro', subscription, status: 'past_due', created: now - 20 }));
      expect(pastDue.body).toMatchObject({ outcome: 'recorded', tenantId });
      expect(await db.tenant.findUniqueOrThrow({ where: { id: tenantId } })).toMatchObject({ status: 'active' });

      const unpaid = await postEvent(api, event({ type: 'customer.subscription.updated', customer, plan: 'pro', subscription, status: 'unpaid', created: now - 10 }));
      expect(unpaid.body).toMatchObject({ outcome: 'queued', tenantId });
      await waitForApiStatus(api, token, tenantId, 'suspended');
      await eventually(async () => (await appDeployment(kube, tenantId))?.spec?.replicas === 0, 60_000, 'replicas 0');
      expect(await db.subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: subscription } })).toMatchObject({ status: 'unpaid' });

      const paidAgain = await postEvent(api, event({ type: 'customer.subscription.updated', customer, plan: 'pro', subscription, status: 'active', created: now }));
      expect(paidAgain.body).toMatchObject({ outcome: 'queued', tenantId });
      await waitForApiStatus(api, token, tenantId, 'active');
      await eventually(async () => (await appDeployment(kube, tenantId))?.spec?.replicas === replicas, 60_000, `replicas ${replicas}`);
      expect(await workflowRuns(temporal.client, tenantId)).toBe(1);

      await postEvent(api, event({ type: 'customer.subscription.deleted', customer, subscription }));
      await waitForNamespaceGone(kube, tenantId);
    }));
});
