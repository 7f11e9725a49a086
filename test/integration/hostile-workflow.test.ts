/**
 * An attacker who reaches Temporal (a raw client, no API in between) starts a tenant's workflow
 * with a carried state that names another tenant's namespace, then asks for its teardown. The
 * activities refuse to act on a namespace that is not the tenant's own: the victim's namespace,
 * its objects and its release stay, and the attacker's run shows why it is stuck.
 * The attacker is a customer with a tenant of its own, so its run gets as far as the teardown.
 */
import type { V1ConfigMap, V1Namespace } from '@kubernetes/client-node';
import { createActivities } from '../../src/activities';
import { PROVISION_STEPS, deprovisionSignal, statusQuery, tenantWorkflowId } from '../../src/contract';
import { tenantNamespace } from '../../src/naming';
import type { provisionTenant } from '../../src/workflows';
import { eventually, newTenantId, realDeps, testDb, testKube, uniqueTaskQueue, useTemporalClient, withWorker } from './helpers';

const workflowsPath = require.resolve('../../src/workflows');

describe('a workflow started with another tenant\'s namespace', () => {
  const kube = testKube();
  const db = testDb();
  const temporal = useTemporalClient();
  const victim = newTenantId();
  const victimNs = tenantNamespace(victim);

  beforeAll(async () => {
    await kube.apply<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: victimNs, labels: { 'app.kubernetes.io/managed-by': 'tenant-provisioner' } } });
    await kube.apply<V1ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'victim-data', namespace: victimNs }, data: { kept: 'yes' } });
  });

  afterAll(async () => {
    await kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: victimNs }).catch(() => undefined);
    await db.$disconnect();
  });

  it.each([
    ['another tenant', () => victimNs],
    ['kube-system', () => 'kube-system'],
  ])('cannot tear down %s: every namespaced step refuses it, and nothing there changes', async (_what, target) => {
    const taskQueue = uniqueTaskQueue('hostile');
    const attacker = newTenantId();
    const namespace = target();
    // The attacker is a customer with a tenant of its own (a row), and reaches Temporal directly.
    await db.tenant.create({ data: { id: attacker, plan: 'starter', status: 'active', workflowId: tenantWorkflowId(attacker), namespace: tenantNamespace(attacker) } });
    await withWorker({ taskQueue, workflowsPath, activities: createActivities(realDeps(db)) }, async () => {
      const handle = await temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', {
        taskQueue,
        workflowId: tenantWorkflowId(attacker),
        args: [
          {
            tenantId: attacker,
            plan: 'starter',
            carried: { namespace, status: 'active', plan: 'starter', completedSteps: [...PROVISION_STEPS], startedAt: new Date().toISOString() },
          },
        ],
      });
      try {
        await handle.signal(deprovisionSignal, { reason: 'hostile teardown', graceSeconds: 0 });
        const condition = await eventually(async () => (await handle.query(statusQuery)).condition, 90_000, 'the refused teardown as a condition');
        expect(condition.message).toMatch(/NamespaceNotOwned|is not tenant .* own/);
        expect(condition.message).toContain(namespace);
        const ns = await kube.read<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', name: namespace });
        expect(ns?.metadata?.deletionTimestamp).toBeUndefined();
        if (namespace === victimNs) {
          const cm = await kube.read<V1ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', name: 'victim-data', namespace });
          expect(cm?.data).toStrictEqual({ kept: 'yes' });
        }
      } finally {
        await handle.terminate('hostile-workflow test').catch(() => undefined);
      }
    });
  }, 180_000);
});
