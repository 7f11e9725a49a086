/**
 * Quotas for real, on the local stack's real node: a tenant provisioned by the workflow, then pods
 * in its namespace as a tenant would make them. Above the LimitRange maximum: refused. Without
 * limits: the plan's defaults, and the pod runs. More than the quota holds: refused once it is
 * spent by running pods. And a downgrade of a tenant whose pods really run completes.
 */
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { createActivities } from '../../src/activities';
import type { ActivityDeps } from '../../src/activities/common';
import { changePlanSignal, deprovisionSignal, statusQuery, tenantWorkflowId } from '../../src/contract';
import { loadPlanCatalogue } from '../../src/plans';
import type { provisionTenant } from '../../src/workflows';
import { REAL_NODE, REAL_NODE_SKIP_REASON, appPod, realNodeSettings } from './real-node-pods';
import { eventually, newTenantId, realDeps, testDb, testKube, uniqueTaskQueue, useTemporalClient, withWorker } from './helpers';

const REAL = REAL_NODE;
const SKIP_REASON = REAL_NODE_SKIP_REASON;
const workflowsPath = require.resolve('../../src/workflows');
const plans = loadPlanCatalogue();

/** A pod as a tenant would run it, with these resources or none (the LimitRange's defaults). */
const pod = (namespace: string, name: string, resources?: NonNullable<V1Pod['spec']>['containers'][number]['resources']): V1Pod =>
  appPod(namespace, name, { app: 'quota-test' }, resources ? { resources } : {});

const refusal = (err: unknown) => {
  const e = err as { code?: number; body?: unknown };
  const body = typeof e.body === 'string' ? e.body : JSON.stringify(e.body ?? '');
  return { code: e.code, message: (JSON.parse(body || '{}') as { message?: string }).message ?? body };
};

(REAL ? describe : describe.skip)(`quotas with real pods${SKIP_REASON}`, () => {
  const kube = testKube();
  const db = testDb();
  const temporal = useTemporalClient();

  afterAll(async () => {
    await db.$disconnect();
  });

  function deps(): ActivityDeps {
    const base = realDeps(db);
    return {
      ...base,
      settings: {
        ...base.settings,
        ...realNodeSettings(),
      },
    };
  }

  const ready = (p: V1Pod | undefined) => !!p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

  it('refuses a pod above the maximum, gives one without limits the defaults, and refuses pods once running ones spend the quota', async () => {
    const taskQueue = uniqueTaskQueue('quota-real');
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    const starter = plans.get('starter');
    await withWorker({ taskQueue, workflowsPath, activities: createActivities(deps()) }, async () => {
      const handle = await temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', {
        taskQueue,
        workflowId: tenantWorkflowId(tenantId),
        args: [{ tenantId, plan: 'starter' }],
      });
      try {
        await eventually(async () => (await handle.query(statusQuery)).status === 'active', 180_000, 'tenant active');

        // Above the LimitRange maximum (starter: 500m CPU per container): refused at admission.
        const tooBig = await kube.apply(pod(namespace, 'too-big', { limits: { cpu: '1', memory: '128Mi' }, requests: { cpu: '100m', memory: '64Mi' } })).then(
          () => undefined,
          refusal,
        );
        expect(tooBig?.code).toBe(403);
        expect(tooBig?.message).toMatch(/maximum cpu usage per Container is 500m/);

        // No resources at all: the LimitRange's defaults, and the pod really runs.
        await kube.apply(pod(namespace, 'defaults'));
        const defaults = await eventually(async () => {
          const p = await kube.read<V1Pod>({ apiVersion: 'v1', kind: 'Pod', name: 'defaults', namespace });
          return ready(p) ? p : undefined;
        }, 60_000, 'the pod without limits running');
        expect(defaults.spec?.containers[0]?.resources).toEqual({
          limits: { cpu: starter.limitRange.defaultLimitCpu, memory: starter.limitRange.defaultLimitMemory },
          requests: { cpu: starter.limitRange.defaultRequestCpu, memory: starter.limitRange.defaultRequestMemory },
        });

        // More pods at the defaults (200m CPU limit each) until the quota (1 CPU of limits) is
        // spent: the app's pod and the one above hold 400m, so three more fit and the next is refused.
        const made: string[] = [];
        let refused: { code?: number; message: string } | undefined;
        for (let i = 0; i < starter.quota.pods && !refused; i++) {
          const name = `fill-${i}`;
          refused = await kube.apply(pod(namespace, name)).then(() => {
            made.push(name);
            return undefined;
          }, refusal);
        }
        expect(made).toHaveLength(3);
        expect(refused?.code).toBe(403);
        expect(refused?.message).toMatch(/exceeded quota: tenant-quota.*limits\.cpu/);
        for (const name of made) {
          await eventually(async () => ready(await kube.read<V1Pod>({ apiVersion: 'v1', kind: 'Pod', name, namespace })), 60_000, `${name} running`);
        }
      } finally {
        await handle.signal(deprovisionSignal, { reason: 'quota test' }).catch(() => undefined);
        await handle.result().catch(() => undefined);
      }
    });
  }, 400_000);

  it('completes a downgrade of a tenant whose pods really run', async () => {
    const taskQueue = uniqueTaskQueue('downgrade-real');
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    await withWorker({ taskQueue, workflowsPath, activities: createActivities(deps()) }, async () => {
      const handle = await temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', {
        taskQueue,
        workflowId: tenantWorkflowId(tenantId),
        args: [{ tenantId, plan: 'pro' }],
      });
      try {
        await eventually(async () => (await handle.query(statusQuery)).status === 'active', 180_000, 'tenant active');
        await handle.signal(changePlanSignal, { plan: 'starter' });
        const done = await eventually(async () => {
          const p = await handle.query(statusQuery);
          return p.plan === 'starter' && !p.currentStep ? p : undefined;
        }, 180_000, 'plan starter');
        expect(done.condition).toBeUndefined();
        const [deployment] = await kube.list<V1Deployment>('apps/v1', 'Deployment', namespace);
        expect(deployment?.spec?.replicas).toBe(plans.get('starter').app.replicas);
        expect(deployment?.status?.readyReplicas).toBe(plans.get('starter').app.replicas);
        const pods = (await kube.list<V1Pod>('v1', 'Pod', namespace)).filter((p) => !p.metadata?.deletionTimestamp);
        expect(pods.every((p) => p.spec?.nodeName === 'real-node')).toBe(true);
        expect(pods.map((p) => p.spec?.containers[0]?.resources?.limits)).toContainEqual({ cpu: '200m', memory: '128Mi' });
      } finally {
        await handle.signal(deprovisionSignal, { reason: 'downgrade test' }).catch(() => undefined);
        await handle.result().catch(() => undefined);
      }
    });
  }, 400_000);
});
