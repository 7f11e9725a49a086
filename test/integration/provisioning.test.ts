/**
 * The real thing, no mocks: ProvisionTenant with its real activities against PostgreSQL, Temporal,
 * the Kubernetes control plane and Helm.
 */
import path from 'node:path';
import type {
  V1Deployment,
  V1LimitRange,
  V1Namespace,
  V1NetworkPolicy,
  V1ResourceQuota,
  V1Secret,
} from '@kubernetes/client-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { createActivities } from '../../src/activities';
import { deprovisionSignal, statusQuery, tenantWorkflowId, PROVISION_STEPS } from '../../src/contract';
import { createHelm } from '../../src/helm/helm';
import { LABEL_MANAGED_BY, LABEL_PLAN, LABEL_TENANT_ID } from '../../src/k8s/labels';
import { loadPlanCatalogue } from '../../src/plans';
import { TENANT_RELEASE_NAME } from '../../src/naming';
import type { provisionTenant } from '../../src/workflows';
import { ROOT, activityEnvFor, env, eventually, newTenantId, realDeps, testDb, testKube, uniqueTaskQueue, useTemporalClient, withWorker } from './helpers';

const workflowsPath = require.resolve('../../src/workflows');
const plans = loadPlanCatalogue();

describe('provisioning on the real stack', () => {
  const kube = testKube();
  const db = testDb();
  const temporal = useTemporalClient();

  afterAll(async () => {
    await db.$disconnect();
  });

  const read = <T extends object>(apiVersion: string, kind: string, name: string, namespace?: string) =>
    kube.read<T & { apiVersion: string; kind: string }>({ apiVersion, kind, name, namespace });

  it('provisions a tenant with every object in place, then deprovisions it without a trace', async () => {
    const taskQueue = uniqueTaskQueue('real');
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    const plan = plans.get('pro');

    await withWorker({ taskQueue, workflowsPath, activities: createActivities(realDeps(db)) }, async () => {
      const handle = await temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', {
        taskQueue,
        workflowId: tenantWorkflowId(tenantId),
        args: [{ tenantId, plan: 'pro', customerId: 'cus_test123' }],
      });
      await eventually(async () => (await handle.query(statusQuery)).status === 'active', 180_000, 'tenant active');

      // Namespace: tenant labels and Pod Security Admission "restricted".
      const ns = await read<V1Namespace>('v1', 'Namespace', namespace);
      expect(ns?.metadata?.labels).toMatchObject({
        [LABEL_TENANT_ID]: tenantId,
        [LABEL_PLAN]: 'pro',
        [LABEL_MANAGED_BY]: 'tenant-provisioner',
        'pod-security.kubernetes.io/enforce': 'restricted',
      });

      // Network isolation: default deny plus the allowed paths.
      const policies = await kube.list<V1NetworkPolicy>('networking.k8s.io/v1', 'NetworkPolicy', namespace);
      expect(policies.map((p) => p.metadata?.name).sort()).toEqual(
        ['allow-dns-egress', 'allow-from-ingress-controller', 'allow-internet-egress', 'allow-same-namespace', 'default-deny-all'],
      );
      const deny = policies.find((p) => p.metadata?.name === 'default-deny-all');
      expect(deny?.spec?.policyTypes?.sort()).toEqual(['Egress', 'Ingress']);
      expect(deny?.spec?.ingress ?? []).toEqual([]);

      // Quota and limit range from the plan catalogue; the quota controller has counted usage.
      const quota = await eventually(async () => {
        const q = await read<V1ResourceQuota>('v1', 'ResourceQuota', 'tenant-quota', namespace);
        return q?.status?.used ? q : undefined;
      }, 30_000, 'quota status');
      expect(quota.spec?.hard).toMatchObject({ 'limits.cpu': plan.quota.limitsCpu, 'limits.memory': plan.quota.limitsMemory, pods: String(plan.quota.pods) });
      const limits = await read<V1LimitRange>('v1', 'LimitRange', 'tenant-limits', namespace);
      expect(limits?.spec?.limits?.[0]?.type).toBe('Container');

      // Credentials exist, were generated here, and never reached Temporal's history.
      const secret = await read<V1Secret>('v1', 'Secret', 'tenant-credentials', namespace);
      const values = Object.values(secret?.data ?? {}).map((b64) => Buffer.from(b64, 'base64').toString());
      expect(values.length).toBeGreaterThanOrEqual(3);
      for (const v of values) expect(v.length).toBeGreaterThanOrEqual(32);
      const events = (await handle.fetchHistory()).events ?? [];
      const history = JSON.stringify(events);
      for (const v of values) {
        expect(history).not.toContain(v);
        expect(history).not.toContain(Buffer.from(v).toString('base64'));
      }
      // Only inspectTenant (recorded before anything is created) and Helm went through the server's
      // activity queue; the other quick steps ran as local activities.
      expect(events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [])).toEqual(['inspectTenant', 'deployApp']);
      expect(events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity').length).toBeGreaterThanOrEqual(7);

      // The app: Helm release deployed, Deployment Ready with the plan's replicas.
      const release = await createHelm({ binary: 'helm', kubeconfig: env('KUBECONFIG') }).status(TENANT_RELEASE_NAME, namespace);
      expect(release).toMatchObject({ status: 'deployed', namespace });
      const deployments = await kube.list<V1Deployment>('apps/v1', 'Deployment', namespace);
      expect(deployments).toHaveLength(1);
      expect(deployments[0]!.status?.readyReplicas).toBe(plan.app.replicas);

      // The Web UI finds the tenant by its search attributes.
      await eventually(async () => {
        const found: string[] = [];
        for await (const wf of temporal.client.workflow.list({ query: `TenantId="${tenantId}" AND TenantStatus="active" AND TenantPlan="pro" AND CustomerId="cus_test123"` })) {
          found.push(wf.workflowId);
        }
        return found.length === 1 && found[0] === tenantWorkflowId(tenantId);
      }, 30_000, 'the workflow by its search attributes');

      // PostgreSQL mirror: the row and the audit trail.
      const row = await db.tenant.findUniqueOrThrow({ where: { id: tenantId }, include: { steps: true } });
      expect(row).toMatchObject({ status: 'active', namespace, plan: 'pro', currentStep: null, lastError: null, workflowId: tenantWorkflowId(tenantId) });
      const succeeded = row.steps.filter((s) => s.phase === 'succeeded').map((s) => s.step);
      for (const step of PROVISION_STEPS) expect(succeeded).toContain(step);

      await handle.signal(deprovisionSignal, { reason: 'test' });
      expect(await handle.result()).toMatchObject({ status: 'deprovisioned', namespace });
    });

    expect(await read('v1', 'Namespace', namespace)).toBeUndefined();
    expect(await createHelm({ binary: 'helm', kubeconfig: env('KUBECONFIG') }).status(TENANT_RELEASE_NAME, namespace)).toBeUndefined();
    const row = await db.tenant.findUniqueOrThrow({ where: { id: tenantId } });
    expect(row.status).toBe('deprovisioned');
  });

  it('puts back isolation objects that someone removed (periodic reconciliation)', async () => {
    const taskQueue = uniqueTaskQueue('real-drift');
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    await withWorker({ taskQueue, workflowsPath, activities: createActivities(realDeps(db)) }, async () => {
      const handle = await temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', {
        taskQueue,
        workflowId: tenantWorkflowId(tenantId),
        args: [{ tenantId, plan: 'starter', reconcileIntervalSeconds: 3 }],
      });
      await eventually(async () => (await handle.query(statusQuery)).status === 'active', 180_000, 'tenant active');
      const secretBefore = await read<V1Secret>('v1', 'Secret', 'tenant-credentials', namespace);

      // Drift: a policy and the quota deleted by hand, the namespace's isolation label removed.
      await kube.delete({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', name: 'default-deny-all', namespace });
      await kube.delete({ apiVersion: 'v1', kind: 'ResourceQuota', name: 'tenant-quota', namespace });
      await eventually(async () => !(await read('v1', 'ResourceQuota', 'tenant-quota', namespace)), 10_000, 'quota deleted');

      await eventually(async () => {
        const np = await read<V1NetworkPolicy>('networking.k8s.io/v1', 'NetworkPolicy', 'default-deny-all', namespace);
        const quota = await read<V1ResourceQuota>('v1', 'ResourceQuota', 'tenant-quota', namespace);
        return np && quota;
      }, 30_000, 'the deleted objects to be re-applied');
      // The credentials were still there: reconciliation must not rotate them.
      const secretAfter = await read<V1Secret>('v1', 'Secret', 'tenant-credentials', namespace);
      expect(secretAfter?.data).toEqual(secretBefore?.data);
      const row = await db.tenant.findUniqueOrThrow({ where: { id: tenantId }, include: { steps: true } });
      expect(row.status).toBe('active');
      expect(row.steps.filter((s) => s.step === 'applyNetworkPolicies' && s.phase === 'succeeded').length).toBeGreaterThanOrEqual(2);

      await handle.signal(deprovisionSignal, {});
      expect(await handle.result()).toMatchObject({ status: 'deprovisioned' });
    });
    expect(await read('v1', 'Namespace', namespace)).toBeUndefined();
  });

  it('undoes everything when the Helm install fails, leaving a failed row with the reason', async () => {
    const taskQueue = uniqueTaskQueue('real-fail');
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    const deps = realDeps(db, { chart: path.join(ROOT, 'test/fixtures/charts/broken') });

    const err = await withWorker({ taskQueue, workflowsPath, activities: createActivities(deps) }, async () => {
      const handle = await temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', {
        taskQueue,
        workflowId: tenantWorkflowId(tenantId),
        args: [{ tenantId, plan: 'starter' }],
      });
      return handle.result().then(() => undefined, (e: unknown) => e);
    });

    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(await read('v1', 'Namespace', namespace)).toBeUndefined();
    const row = await db.tenant.findUniqueOrThrow({ where: { id: tenantId }, include: { steps: { orderBy: { id: 'asc' } } } });
    expect(row.status).toBe('failed');
    expect(row.lastError).toMatch(/^deployApp failed: helm upgrade --install tenant-app in tenant-[0-9a-f-]+ failed: .*invalid/);
    const undone = row.steps.filter((s) => s.phase === 'compensated').map((s) => s.step);
    expect(undone).toEqual(['uninstallApp', 'removeSecrets', 'removeResourceLimits', 'removeNetworkPolicies', 'deleteNamespace']);
  });

  it('runs every activity twice with the same outcome (idempotent steps and compensations)', async () => {
    const tenantId = newTenantId();
    const acts = createActivities(realDeps(db));
    const env = activityEnvFor(tenantId);
    const namespace = `tenant-${tenantId}`;
    const ref = { tenantId, namespace };

    const snapshot = async () => {
      const objs = await Promise.all([
        read<V1Namespace>('v1', 'Namespace', namespace),
        ...['default-deny-all', 'allow-same-namespace', 'allow-dns-egress', 'allow-from-ingress-controller'].map((n) =>
          read<V1NetworkPolicy>('networking.k8s.io/v1', 'NetworkPolicy', n, namespace),
        ),
        read<V1ResourceQuota>('v1', 'ResourceQuota', 'tenant-quota', namespace),
        read<V1LimitRange>('v1', 'LimitRange', 'tenant-limits', namespace),
        read<V1Secret>('v1', 'Secret', 'tenant-credentials', namespace),
      ]);
      const row = await db.tenant.findUnique({ where: { id: tenantId } });
      return {
        // resourceVersion moves only when the object really changed. A quota's status is the quota
        // controller's (it recounts after the refused create of an existing Secret): its spec counts.
        objects: objs.map((o) =>
          !o ? 'absent' : o.kind === 'ResourceQuota' ? `${o.kind}/${o.metadata?.name} ${JSON.stringify((o as V1ResourceQuota).spec)}` : `${o.kind}/${o.metadata?.name}@${o.metadata?.resourceVersion}`,
        ),
        secretData: JSON.stringify(objs[objs.length - 1] ? (objs[objs.length - 1] as V1Secret).data : null),
        row: row && { status: row.status, namespace: row.namespace, plan: row.plan },
      };
    };

    const twice = async (call: () => Promise<unknown>) => {
      const first = await env.run(call);
      const before = await snapshot();
      const second = await env.run(call);
      expect(await snapshot()).toEqual(before);
      expect(second).toEqual(first);
    };

    await twice(() => acts.recordTenant({ tenantId, plan: 'starter' }));
    await twice(() => acts.assignNamespace({ tenantId }));
    await twice(() => acts.ensureNamespace({ ...ref, plan: 'starter' }));
    await twice(() => acts.applyNetworkPolicies({ ...ref, plan: 'starter' }));
    await twice(() => acts.applyResourceLimits({ ...ref, plan: 'starter' }));
    const firstSecret = await env.run(() => acts.ensureSecrets({ ...ref, plan: 'starter' }));
    expect(firstSecret).toEqual({ secretName: 'tenant-credentials', created: true });
    const before = await snapshot();
    // A second run finds the secret and leaves it alone: credentials are never rotated by a retry.
    expect(await env.run(() => acts.ensureSecrets({ ...ref, plan: 'starter' }))).toEqual({ secretName: 'tenant-credentials', created: false });
    expect(await snapshot()).toEqual(before);
    await twice(() => acts.setTenantStatus({ tenantId, status: 'active', step: 'markActive' }));
    // Each step ran twice and is logged once: a retried activity writes the same row again.
    const logged = await db.tenantStep.findMany({ where: { tenantId, phase: 'succeeded' }, select: { step: true }, orderBy: { id: 'asc' } });
    expect(logged.map((r) => r.step)).toEqual(PROVISION_STEPS.filter((s) => s !== 'deployApp'));
    await twice(() => acts.recordDeprovisionDeadline({ tenantId, deprovisionAt: '2030-01-01T00:00:00.000Z' }));
    expect((await db.tenant.findUniqueOrThrow({ where: { id: tenantId } })).metadata).toEqual({ deprovisionAt: '2030-01-01T00:00:00.000Z' });

    // Compensations and teardown tolerate "already gone".
    expect(await env.run(() => acts.removeSecrets(ref))).toBe(true);
    // Foreground deletion finishes in the garbage collector, after the DELETE has answered; until
    // then a repeated DELETE still finds the object (and reports it deleted), so wait it out.
    await eventually(async () => (await read('v1', 'Secret', 'tenant-credentials', namespace)) === undefined, 30_000, 'the secret to be gone');
    expect(await env.run(() => acts.removeSecrets(ref))).toBe(false);
    await env.run(() => acts.removeResourceLimits(ref));
    await env.run(() => acts.removeResourceLimits(ref));
    await env.run(() => acts.removeNetworkPolicies(ref));
    await env.run(() => acts.removeNetworkPolicies(ref));
    expect(await env.run(() => acts.uninstallApp(ref))).toBe(false);
    await env.run(() => acts.deleteNamespace(ref));
    await env.run(() => acts.deleteNamespace(ref));
    expect(await read('v1', 'Namespace', namespace)).toBeUndefined();
  });

  it('changes a status together with its step-log entry, or not at all', async () => {
    const tenantId = newTenantId();
    const acts = createActivities(realDeps(db));
    const env = activityEnvFor(tenantId);
    await env.run(() => acts.recordTenant({ tenantId, plan: 'starter' }));
    const stepsBefore = await db.tenantStep.count({ where: { tenantId } });

    // The step name does not fit the step log's column: the log write fails, so the status must not move.
    await expect(env.run(() => acts.setTenantStatus({ tenantId, status: 'active', step: 'x'.repeat(101) }))).rejects.toThrow(/update tenant status \(database\)/);
    expect(await db.tenant.findUniqueOrThrow({ where: { id: tenantId } })).toMatchObject({ status: 'provisioning', currentStep: 'recordTenant' });
    expect(await db.tenantStep.count({ where: { tenantId } })).toBe(stepsBefore);

    await env.run(() => acts.setTenantStatus({ tenantId, status: 'active', step: 'markActive' }));
    expect(await db.tenant.findUniqueOrThrow({ where: { id: tenantId } })).toMatchObject({ status: 'active', currentStep: null });
    expect(await db.tenantStep.findMany({ where: { tenantId, step: 'markActive' }, select: { phase: true } })).toEqual([{ phase: 'succeeded' }]);

    // A failure records its reason on the row and in the log; becoming active again clears it.
    await env.run(() => acts.setTenantStatus({ tenantId, status: 'failed', step: 'markFailed', error: 'chart rejected' }));
    expect(await db.tenant.findUniqueOrThrow({ where: { id: tenantId } })).toMatchObject({ status: 'failed', lastError: 'chart rejected' });
    expect(await db.tenantStep.findFirstOrThrow({ where: { tenantId, step: 'markFailed' } })).toMatchObject({ phase: 'failed', message: 'status failed: chart rejected' });
    await env.run(() => acts.setTenantStatus({ tenantId, status: 'active', step: 'markActive' }));
    expect(await db.tenant.findUniqueOrThrow({ where: { id: tenantId } })).toMatchObject({ status: 'active', lastError: null });
    await db.tenant.delete({ where: { id: tenantId } });

    // A row that is not there: a final failure, and no orphan step-log row.
    await expect(env.run(() => acts.setTenantStatus({ tenantId, status: 'active', step: 'markActive' }))).rejects.toMatchObject({
      type: 'DatabaseRejected',
      nonRetryable: true,
      message: `update tenant status (database): there is no tenant row ${tenantId}`,
    });
    expect(await db.tenantStep.count({ where: { tenantId } })).toBe(0);
  });

  it('rejects a bad tenant id or an unknown plan at once, without retries or side effects', async () => {
    const acts = createActivities(realDeps(db));
    const env = new MockActivityEnvironment();
    await expect(env.run(() => acts.recordTenant({ tenantId: 'not-a-uuid', plan: 'starter' }))).rejects.toMatchObject({
      type: 'InvalidTenant',
      nonRetryable: true,
    });
    const tenantId = newTenantId();
    await expect(env.run(() => acts.recordTenant({ tenantId, plan: 'platinum' }))).rejects.toMatchObject({
      type: 'UnknownPlan',
      nonRetryable: true,
      message: expect.stringMatching(/platinum.*starter/s) as unknown,
    });
    expect(await db.tenant.findUnique({ where: { id: tenantId } })).toBeNull();
  });

  it('refuses to take over or delete a namespace that belongs to someone else', async () => {
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    await kube.apply<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { owner: 'someone-else' } } });
    try {
      const acts = createActivities(realDeps(db));
      const env = activityEnvFor(tenantId);
      await env.run(() => acts.recordTenant({ tenantId, plan: 'starter' }));
      await expect(env.run(() => acts.ensureNamespace({ tenantId, namespace, plan: 'starter' }))).rejects.toMatchObject({
        type: 'NamespaceConflict',
        nonRetryable: true,
      });
      await expect(env.run(() => acts.deleteNamespace({ tenantId, namespace }))).rejects.toMatchObject({ type: 'NamespaceConflict' });
      expect(await read('v1', 'Namespace', namespace)).toBeDefined();
    } finally {
      await kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: namespace });
    }
  });
});
