/**
 * The provisioner needs no more than charts/provisioner grants: the whole provision/deprovision
 * flow runs as the worker's own ServiceAccount on the real API server, and everything outside a
 * tenant's namespace is refused (by RBAC, or by the chart's admission policy where RBAC cannot say
 * "only namespaces I created").
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig, type V1ConfigMap, type V1Namespace, type V1Secret } from '@kubernetes/client-node';
import { createActivities } from '../../src/activities';
import { deprovisionSignal, statusQuery, tenantWorkflowId } from '../../src/contract';
import { createHelm } from '../../src/helm/helm';
import { classifyKubeError, kubeErrorInfo } from '../../src/k8s/errors';
import type { provisionTenant } from '../../src/workflows';
import { ROOT, env, eventually, newTenantId, realDeps, testDb, testKube, uniqueTaskQueue, useTemporalClient, withWorker } from './helpers';

const run = promisify(execFile);
const workflowsPath = require.resolve('../../src/workflows');

describe('provisioner RBAC on the real API server', () => {
  const suffix = newTenantId().slice(0, 8);
  const release = `rbac-${suffix}`;
  const ns = `provisioner-${suffix}`;
  const victim = `victim-${suffix}`;
  const serviceAccount = `${release}-provisioner-worker`;
  const admin = testKube();
  const adminHelm = createHelm({ binary: 'helm', kubeconfig: env('KUBECONFIG') });
  const db = testDb();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rbac-'));
  const saKubeconfig = path.join(dir, 'kubeconfig');
  const temporal = useTemporalClient();

  beforeAll(async () => {
    await admin.apply<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await admin.apply<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: victim } });
    await admin.apply<V1ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'precious', namespace: victim }, data: { keep: 'me' } });
    // The chart as an operator installs it (services scaled to zero: only its RBAC matters here).
    await adminHelm.upgradeInstall({
      release,
      namespace: ns,
      chart: path.join(ROOT, 'charts/provisioner'),
      values: { api: { replicas: 0 }, worker: { replicas: 0 } },
      timeoutSeconds: 120,
    });
    // A short-lived token for the worker's ServiceAccount, as its pod would mount.
    const { stdout: token } = await run('kubectl', ['--kubeconfig', env('KUBECONFIG'), 'create', 'token', serviceAccount, '-n', ns, '--duration', '1h']);
    const adminKc = new KubeConfig();
    adminKc.loadFromFile(env('KUBECONFIG'));
    const cluster = adminKc.getCurrentCluster()!;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'local', server: cluster.server, caData: cluster.caData, caFile: cluster.caFile, skipTLSVerify: cluster.skipTLSVerify }],
      users: [{ name: serviceAccount, token: token.trim() }],
      contexts: [{ name: 'worker', cluster: 'local', user: serviceAccount }],
      currentContext: 'worker',
    });
    writeFileSync(saKubeconfig, kc.exportConfig(), { mode: 0o600 });
    // RBAC and the admission policy take a moment to reach the authorizer's caches.
    await eventually(async () => (await canI('create', 'namespaces')) === true, 30_000, 'the ClusterRoleBinding to take effect');
  });

  afterAll(async () => {
    await adminHelm.uninstall({ release, namespace: ns, timeoutSeconds: 60 }).catch(() => undefined);
    await admin.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns });
    await admin.delete({ apiVersion: 'v1', kind: 'Namespace', name: victim });
    await db.$disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  async function canI(verb: string, resource: string, namespace?: string): Promise<boolean> {
    const args = ['--kubeconfig', saKubeconfig, 'auth', 'can-i', verb, resource, ...(namespace ? ['-n', namespace] : [])];
    try {
      await run('kubectl', args);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 1) return false;
      throw err;
    }
  }

  it('provisions and deprovisions a tenant as the worker ServiceAccount', async () => {
    const taskQueue = uniqueTaskQueue('rbac');
    const tenantId = newTenantId();
    const namespace = `tenant-${tenantId}`;
    await withWorker({ taskQueue, workflowsPath, activities: createActivities(realDeps(db, { kubeconfig: saKubeconfig })) }, async () => {
      const handle = await temporal.client.workflow.start<typeof provisionTenant>('provisionTenant', {
        taskQueue,
        workflowId: tenantWorkflowId(tenantId),
        args: [{ tenantId, plan: 'starter' }],
      });
      await eventually(async () => {
        const p = await handle.query(statusQuery);
        if (p.lastError) throw new Error(`${p.lastError.step}: ${p.lastError.message}`);
        return p.status === 'active';
      }, 180_000, 'tenant active as the worker ServiceAccount');
      expect(await admin.read<V1Secret>({ apiVersion: 'v1', kind: 'Secret', name: 'tenant-credentials', namespace })).toBeDefined();
      await handle.signal(deprovisionSignal, {});
      expect(await handle.result()).toMatchObject({ status: 'deprovisioned' });
    });
    expect(await admin.read({ apiVersion: 'v1', kind: 'Namespace', name: namespace })).toBeUndefined();
  });

  it.each([
    ['get', 'secrets', 'kube-system'],
    ['list', 'secrets', 'kube-system'],
    ['get', 'secrets/some-other-secret', 'default'],
    ['list', 'secrets', undefined],
    ['list', 'nodes', undefined],
    ['create', 'clusterrolebindings', undefined],
    ['create', 'clusterroles', undefined],
    ['create', 'rolebindings', 'default'],
    ['create', 'roles', 'default'],
    ['create', 'pods', 'default'],
    ['create', 'pods/exec', 'default'],
    ['impersonate', 'serviceaccounts', undefined],
    ['escalate', 'clusterroles', undefined],
    ['bind', 'clusterroles', undefined],
    ['create', 'customresourcedefinitions', undefined],
    ['deletecollection', 'namespaces', undefined],
    // No read of any Secret, even by the credentials' own name: RBAC cannot limit it to tenant namespaces.
    ['get', 'secrets/tenant-credentials', 'kube-system'],
    ['get', 'secrets/tenant-credentials', 'default'],
  ])('RBAC denies %s %s (namespace %s)', async (verb, resource, namespace) => {
    expect(await canI(verb, resource, namespace)).toBe(false);
  });

  it.each([
    ['create', 'namespaces', undefined],
    ['create', 'networkpolicies', 'default'],
    ['create', 'secrets', 'default'],
    ['delete', 'secrets/tenant-credentials', 'default'],
    ['patch', 'deployments', 'default'],
  ])('RBAC allows %s %s (namespace %s): what provisioning needs', async (verb, resource, namespace) => {
    expect(await canI(verb, resource, namespace)).toBe(true);
  });

  describe('real requests as the worker', () => {
    const worker = () => testKube(saKubeconfig);
    const rejection = async (p: Promise<unknown>): Promise<unknown> => {
      try {
        await p;
      } catch (err) {
        return err;
      }
      throw new Error('the request was allowed');
    };

    it('cannot read another namespace’s secrets or the nodes', async () => {
      const readSecret = await rejection(worker().read({ apiVersion: 'v1', kind: 'Secret', name: 'anything', namespace: 'kube-system' }));
      expect(kubeErrorInfo(readSecret).code).toBe(403);
      const nodes = await rejection(worker().list('v1', 'Node'));
      expect(kubeErrorInfo(nodes).code).toBe(403);
    });

    describe('a table of escapes, all refused', () => {
      const managed = `tenant-${newTenantId()}`;
      const managedLabels = { 'app.kubernetes.io/managed-by': 'tenant-provisioner', 'tenancy.dev/tenant-id': managed.slice('tenant-'.length) };
      beforeAll(async () => {
        await admin.apply<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: managed, labels: managedLabels } });
        await admin.apply<V1Secret>({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tenant-credentials', namespace: victim }, stringData: { password: 'not yours' } });
      });
      afterAll(async () => {
        await admin.delete({ apiVersion: 'v1', kind: 'Namespace', name: managed });
      });
      const labelled = (name: string, labels: Record<string, string>): V1Namespace => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
      const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'tenant-provisioner' };

      it.each<[string, () => Promise<unknown>, RegExp]>([
        ['relabel kube-system as managed', () => worker().apply(labelled('kube-system', MANAGED_BY)), /already labelled/],
        ['relabel an unmanaged namespace as managed', () => worker().apply(labelled(victim, MANAGED_BY)), /already labelled/],
        ['remove the managed-by label from a managed namespace', () => worker().apply(labelled(managed, { 'app.kubernetes.io/managed-by': 'someone-else' })), /may not remove that label/],
        ['create a namespace outside the prefix', () => worker().createIfAbsent(labelled(`evil-${suffix}`, MANAGED_BY)), /only create namespaces named tenant-\*/],
        ['create a namespace with the prefix but unlabelled', () => worker().createIfAbsent(labelled(`tenant-unlabelled-${suffix}`, {})), /only create namespaces named tenant-\*/],
        ['delete an unmanaged namespace', () => worker().delete({ apiVersion: 'v1', kind: 'Namespace', name: victim }), /already labelled/],
        // Kubernetes' own NamespaceLifecycle protection answers first here; the policy would too.
        ['delete kube-system', () => worker().delete({ apiVersion: 'v1', kind: 'Namespace', name: 'kube-system' }), /may not be deleted|already labelled/],
        [
          'create tenant-credentials in kube-system',
          () => worker().createIfAbsent<V1Secret>({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tenant-credentials', namespace: 'kube-system' }, stringData: { x: 'y' } }),
          /objects inside them/,
        ],
        [
          'create a ConfigMap in kube-system',
          () => worker().createIfAbsent<V1ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `planted-${suffix}`, namespace: 'kube-system' }, data: { x: 'y' } }),
          /objects inside them/,
        ],
        ['read tenant-credentials outside managed namespaces', () => worker().read({ apiVersion: 'v1', kind: 'Secret', name: 'tenant-credentials', namespace: victim }), /forbidden/i],
        ['read tenant-credentials in kube-system', () => worker().read({ apiVersion: 'v1', kind: 'Secret', name: 'tenant-credentials', namespace: 'kube-system' }), /forbidden/i],
        [
          'write a cluster-scoped object (ClusterRole)',
          () => worker().createIfAbsent({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: `evil-${suffix}` }, rules: [] } as V1Namespace),
          /forbidden/i,
        ],
        [
          'write a cluster-scoped object (PriorityClass)',
          () => worker().createIfAbsent({ apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: `evil-${suffix}` }, value: 1 } as V1Namespace),
          /forbidden/i,
        ],
      ])('%s', async (_what, attempt, why) => {
        const err = await rejection(attempt());
        const info = kubeErrorInfo(err);
        expect([403, 422]).toContain(info.code);
        expect(info.message).toMatch(why);
      });

      it('left everything as it was', async () => {
        expect((await admin.read<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', name: 'kube-system' }))?.metadata?.labels?.['app.kubernetes.io/managed-by']).toBeUndefined();
        expect((await admin.read<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', name: victim }))?.metadata?.labels?.['app.kubernetes.io/managed-by']).toBeUndefined();
        expect((await admin.read<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', name: managed }))?.metadata?.labels).toMatchObject(managedLabels);
        expect(await admin.read({ apiVersion: 'v1', kind: 'Namespace', name: `evil-${suffix}` })).toBeUndefined();
        expect(await admin.read({ apiVersion: 'v1', kind: 'Secret', name: 'tenant-credentials', namespace: 'kube-system' })).toBeUndefined();
      });
    });

    it('cannot delete or write into a namespace it does not manage (admission policy)', async () => {
      const del = await rejection(worker().delete({ apiVersion: 'v1', kind: 'Namespace', name: victim }));
      expect(classifyKubeError(del)).toBe('final');
      expect(kubeErrorInfo(del).message).toMatch(/may only change namespaces that are already labelled/);
      const write = await rejection(
        worker().apply<V1ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'precious', namespace: victim }, data: { keep: 'gone' } }),
      );
      expect(kubeErrorInfo(write).message).toMatch(/may only change namespaces labelled/);
      const plant = await rejection(
        worker().createIfAbsent<V1Secret>({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'planted', namespace: 'kube-system' }, stringData: { x: 'y' } }),
      );
      expect(classifyKubeError(plant)).toBe('final');

      const ns = await admin.read<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', name: victim });
      expect(ns?.metadata?.deletionTimestamp).toBeUndefined();
      const cm = await admin.read<V1ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', name: 'precious', namespace: victim });
      expect(cm?.data).toEqual({ keep: 'me' });
    });
  });
});
