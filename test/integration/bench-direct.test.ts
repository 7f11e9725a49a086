/**
 * The provisioning benchmark's direct baseline against the real stack: it must create exactly
 * the objects the workflow creates (compared object by object, the tenant id aside), send one
 * Kubernetes request per object it writes, and remove everything again.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { createActivities } from '../../src/activities';
import { deprovisionDirect, provisionDirect, provisionerObjectCount, type DirectDeps } from '../../src/bench/direct';
import { deprovisionSignal, statusQuery, tenantWorkflowId } from '../../src/contract';
import { createKube, loadKubeConfig, type KubeVerb } from '../../src/k8s/client';
import { TENANT_RELEASE_NAME } from '../../src/naming';
import type { provisionTenant } from '../../src/workflows';
import { env, eventually, newTenantId, realDeps, testDb, testKube, uniqueTaskQueue, useTemporalClient, withWorker } from './helpers';

const execFileP = promisify(execFile);
const workflowsPath = require.resolve('../../src/workflows');

/** Kinds in a tenant namespace: the provisioner's and the tenant chart's. */
const KINDS: Array<[string, string]> = [
  ['v1', 'Namespace'],
  ['networking.k8s.io/v1', 'NetworkPolicy'],
  ['v1', 'LimitRange'],
  ['v1', 'ResourceQuota'],
  ['v1', 'Secret'],
  ['v1', 'ConfigMap'],
  ['v1', 'Service'],
  ['v1', 'ServiceAccount'],
  ['apps/v1', 'Deployment'],
];

describe('the benchmark baseline on the real stack', () => {
  const kube = testKube();
  const db = testDb();
  const temporal = useTemporalClient();
  afterAll(async () => {
    await db.$disconnect();
  });

  /**
   * Everything in the tenant's namespace (and the namespace itself) as comparable text: server
   * fields dropped, the tenant id replaced, Secret values (random) reduced to their keys, and
   * Helm's release record to its labels.
   */
  async function snapshot(tenantId: string): Promise<string[]> {
    const ns = `tenant-${tenantId}`;
    const out: string[] = [];
    for (const [apiVersion, kind] of KINDS) {
      const items = kind === 'Namespace' ? [await kube.read<KubernetesObject>({ apiVersion, kind, name: ns })] : await kube.list<KubernetesObject & Record<string, unknown>>(apiVersion, kind, ns);
      for (const item of items) {
        if (!item) continue;
        const o = JSON.parse(JSON.stringify(item)) as Record<string, Record<string, unknown> | undefined>;
        const name = String(o.metadata?.name);
        // Objects Kubernetes itself puts in every namespace.
        if ((kind === 'ConfigMap' && name === 'kube-root-ca.crt') || (kind === 'ServiceAccount' && name === 'default')) continue;
        for (const f of ['uid', 'resourceVersion', 'creationTimestamp', 'managedFields', 'generation']) delete o.metadata?.[f];
        delete o.status;
        if (kind === 'Secret') o.data = Object.fromEntries(Object.keys(o.data ?? {}).sort().map((k) => [k, '…']));
        if (kind === 'ConfigMap' && name.startsWith('sh.helm.release.')) {
          o.data = {};
          const labels = o.metadata?.labels as Record<string, string> | undefined;
          if (labels) for (const l of ['createdAt', 'modifiedAt']) delete labels[l];
        }
        if (kind === 'Service') for (const f of ['clusterIP', 'clusterIPs']) delete o.spec?.[f];
        out.push(`${kind} ${JSON.stringify(o).replaceAll(tenantId, 'TENANT')}`);
      }
    }
    return out.sort();
  }

  async function releaseValues(tenantId: string): Promise<string> {
    const { stdout } = await execFileP('helm', ['--kubeconfig', env('KUBECONFIG'), 'get', 'values', TENANT_RELEASE_NAME, '--namespace', `tenant-${tenantId}`, '--output', 'json'], {
      env: { ...process.env, HELM_DRIVER: 'configmap' },
    });
    return stdout.replaceAll(tenantId, 'TENANT');
  }

  it('creates the objects the workflow creates, one request per object written, and removes them all', async () => {
    const taskQueue = uniqueTaskQueue('bench-direct');
    const viaWorkflow = newTenantId();
    const direct = newTenantId();
    const deps = realDeps(db);
    const requests: Array<[KubeVerb, string]> = [];
    const directDeps: DirectDeps = { ...deps, kube: createKube(loadKubeConfig(env('KUBECONFIG')), { qps: 50, burst: 100, timeoutMs: 15_000, onRequest: (verb, kind) => requests.push([verb, kind]) }) };

    await withWorker({ taskQueue, workflowsPath, activities: createActivities(deps) }, async () => {
      const handle = await temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', {
        taskQueue,
        workflowId: tenantWorkflowId(viaWorkflow),
        args: [{ tenantId: viaWorkflow, plan: 'starter' }],
      });
      try {
        await eventually(async () => (await handle.query(statusQuery)).status === 'active', 180_000, 'the workflow tenant to be active');
        expect(await provisionDirect(directDeps, direct, 'starter')).toBe(1);

        const written = provisionerObjectCount(directDeps, direct, 'starter');
        expect(requests).toHaveLength(written);
        expect(requests.map(([verb]) => verb)).toEqual([...Array<KubeVerb>(written - 1).fill('apply'), 'create']);
        expect(requests.at(-1)).toEqual(['create', 'Secret']);

        const [a, b] = await Promise.all([snapshot(viaWorkflow), snapshot(direct)]);
        expect(b.length).toBeGreaterThanOrEqual(written + 4);
        expect(b).toEqual(a);
        expect(await releaseValues(direct)).toEqual(await releaseValues(viaWorkflow));
      } finally {
        await handle.signal(deprovisionSignal, { reason: 'test cleanup' });
        await handle.result().catch(() => undefined);
        await deprovisionDirect(directDeps, direct);
      }
    });

    for (const id of [viaWorkflow, direct]) {
      expect(await kube.read({ apiVersion: 'v1', kind: 'Namespace', name: `tenant-${id}` })).toBeUndefined();
      expect(await deps.helm.status(TENANT_RELEASE_NAME, `tenant-${id}`)).toBeUndefined();
    }
  }, 400_000);
});
