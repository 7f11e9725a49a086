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
import { KubeConfig, type V1ConfigMap, type V1Deployment, type V1Namespace, type V1PodSpec, type V1Secret, type V1Service } from '@kubernetes/client-node';
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
      const RESTRICTED = { 'pod-security.kubernetes.io/enforce': 'restricted' };
      /** A Deployment in the managed namespace whose pod template `patch` makes hostile. */
      const deployment = (name: string, patch: (spec: V1PodSpec) => void): V1Deployment & { apiVersion: string; kind: string } => {
        const spec: V1PodSpec = { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] };
        patch(spec);
        return {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: `${name}-${suffix}`, namespace: managed },
          spec: { replicas: 0, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec } },
        };
      };
      const service = (name: string, spec: V1Service['spec']): V1Service & { apiVersion: string; kind: string } => ({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `${name}-${suffix}`, namespace: managed },
        spec: { selector: { app: 'x' }, ports: [{ port: 80 }], ...spec },
      });
      const hostile = [
        deployment('hostpath', (s) => (s.volumes = [{ name: 'root', hostPath: { path: '/' } }])),
        deployment('privileged', (s) => (s.containers[0]!.securityContext = { privileged: true })),
        deployment('hostnetwork', (s) => (s.hostNetwork = true)),
        deployment('hostpid', (s) => (s.hostPID = true)),
        deployment('sysadmin', (s) => (s.containers[0]!.securityContext = { capabilities: { add: ['SYS_ADMIN'] } })),
        deployment('initpriv', (s) => (s.initContainers = [{ name: 'init', image: 'registry.k8s.io/pause:3.10', securityContext: { privileged: true } }])),
        deployment('controlplane', (s) => (s.tolerations = [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }])),
        deployment('tolerateall', (s) => (s.tolerations = [{ operator: 'Exists' }])),
        deployment('selector', (s) => (s.nodeSelector = { 'node-role.kubernetes.io/control-plane': '' })),
        deployment('nodename', (s) => (s.nodeName = 'some-node')),
      ];

      it.each<[string, () => Promise<unknown>, RegExp]>([
        // Restricted labels, so that the workload policy has nothing to say and the namespace policy answers.
        ['relabel kube-system as managed', () => worker().apply(labelled('kube-system', { ...MANAGED_BY, ...RESTRICTED })), /already labelled/],
        ['relabel an unmanaged namespace as managed', () => worker().apply(labelled(victim, { ...MANAGED_BY, ...RESTRICTED })), /already labelled/],
        ['remove the managed-by label from a managed namespace', () => worker().apply(labelled(managed, { ...managedLabels, 'app.kubernetes.io/managed-by': 'someone-else' })), /may not remove that label/],
        // Both policies refuse a name outside the prefix; whichever answers first names the prefix.
        ['create a namespace outside the prefix', () => worker().createIfAbsent(labelled(`evil-${suffix}`, { ...MANAGED_BY, ...RESTRICTED })), /only create namespaces named tenant-\*|equal to its tenant id \(tenant-<tenant id>\)/],
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
          'set Pod Security enforce=privileged on a managed namespace (it stays managed)',
          () => worker().apply(labelled(managed, { ...managedLabels, 'pod-security.kubernetes.io/enforce': 'privileged' })),
          /keeps Pod Security restricted/,
        ],
        [
          'set Pod Security warn=privileged next to enforce=restricted',
          () => worker().apply(labelled(managed, { ...managedLabels, ...RESTRICTED, 'pod-security.kubernetes.io/warn': 'privileged' })),
          /keeps Pod Security restricted/,
        ],
        [
          "change a managed namespace's tenant-id label",
          () => worker().apply(labelled(managed, { ...managedLabels, ...RESTRICTED, 'tenancy.dev/tenant-id': newTenantId() })),
          /tenant-id label of a namespace never changes/,
        ],
        [
          'create a managed namespace whose tenant-id label is another tenant',
          () => worker().createIfAbsent(labelled(`tenant-${newTenantId()}`, { ...MANAGED_BY, ...RESTRICTED, 'tenancy.dev/tenant-id': newTenantId() })),
          /created with tenancy.dev\/tenant-id equal to its tenant id/,
        ],
        ['a Deployment mounting hostPath /', () => worker().apply(hostile[0]!), /may not mount hostPath volumes/],
        ['a privileged Deployment', () => worker().apply(hostile[1]!), /may not be privileged or add capabilities/],
        ["a Deployment on the host's network", () => worker().apply(hostile[2]!), /may not use the host's network, PID or IPC namespace/],
        ["a Deployment in the host's PID namespace", () => worker().apply(hostile[3]!), /may not use the host's network, PID or IPC namespace/],
        ['a Deployment adding CAP_SYS_ADMIN', () => worker().apply(hostile[4]!), /may not be privileged or add capabilities/],
        ['a Deployment with a privileged init container', () => worker().apply(hostile[5]!), /may not be privileged or add capabilities/],
        ['a Deployment tolerating the control-plane taint', () => worker().apply(hostile[6]!), /may only tolerate the taints node.kubernetes.io\/not-ready/],
        ['a Deployment tolerating every taint', () => worker().apply(hostile[7]!), /may only tolerate the taints/],
        ['a Deployment selecting control-plane nodes', () => worker().apply(hostile[8]!), /may only select nodes by kubernetes.io\/os/],
        ['a Deployment pinned to a node by nodeName', () => worker().apply(hostile[9]!), /never by nodeName/],
        ['a Service with externalIPs (CVE-2020-8554)', () => worker().apply(service('externalip', { externalIPs: ['192.0.2.10'] })), /ClusterIP without externalIPs/],
        ['a NodePort Service', () => worker().apply(service('nodeport', { type: 'NodePort' })), /ClusterIP without externalIPs/],
        ['a LoadBalancer Service', () => worker().apply(service('lb', { type: 'LoadBalancer' })), /ClusterIP without externalIPs/],
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
        const labels = (await admin.read<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', name: managed }))?.metadata?.labels ?? {};
        expect(Object.keys(labels).filter((k) => k.startsWith('pod-security.kubernetes.io/'))).toEqual([]);
        expect(await admin.list('apps/v1', 'Deployment', managed)).toEqual([]);
        expect(await admin.list('v1', 'Service', managed)).toEqual([]);
      });

      it('the control: a plain Deployment and a ClusterIP Service in the managed namespace are admitted', async () => {
        await worker().apply(deployment('plain', () => undefined));
        await worker().apply(service('plain', {}));
        await admin.delete({ apiVersion: 'apps/v1', kind: 'Deployment', name: `plain-${suffix}`, namespace: managed });
        await admin.delete({ apiVersion: 'v1', kind: 'Service', name: `plain-${suffix}`, namespace: managed });
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
