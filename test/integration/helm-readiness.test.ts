/**
 * The Helm adapter's readiness wait on the real cluster (kwok readies scheduled pods): a release
 * is reported as soon as its Deployment is ready, and one that never becomes ready (its pod can
 * be scheduled on no node) is undone as --atomic undid it, with a retryable error.
 */
import path from 'node:path';
import type { V1Deployment } from '@kubernetes/client-node';
import { HelmError, createHelm } from '../../src/helm/helm';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../../src/k8s/labels';
import { TENANT_RELEASE_NAME } from '../../src/naming';
import { ROOT, env, eventually, newTenantId, testKube } from './helpers';

describe('Helm readiness wait on the real cluster', () => {
  const kubeconfig = env('KUBECONFIG');
  const kube = testKube(kubeconfig);
  const helm = createHelm({ binary: 'helm', kubeconfig });
  const chart = path.join(ROOT, 'charts/tenant');
  const namespaces: string[] = [];

  async function scratchNamespace(): Promise<string> {
    const name = `tenant-${newTenantId()}`;
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { [LABEL_MANAGED_BY]: MANAGED_BY } } });
    namespaces.push(name);
    return name;
  }

  const values = (tenantId: string, extra: Record<string, unknown> = {}) => ({ tenant: { id: tenantId, plan: 'starter' }, replicaCount: 1, ...extra });
  // No node carries this label: the pod stays Pending and the Deployment is never ready.
  const unschedulable = { nodeSelector: { 'tenant-provisioner.test/no-such-node': 'true' } };

  const deployment = async (namespace: string) =>
    (await kube.list<V1Deployment>('apps/v1', 'Deployment', namespace, `app.kubernetes.io/instance=${TENANT_RELEASE_NAME}`))[0];

  afterAll(async () => {
    await Promise.all(namespaces.map((name) => kube.delete({ apiVersion: 'v1', kind: 'Namespace', name })));
  });

  it('reports a release as soon as its Deployment is ready', async () => {
    const namespace = await scratchNamespace();
    const timings: number[] = [];
    for (const replicaCount of [1, 2]) {
      const started = performance.now();
      const release = await helm.upgradeInstall({ release: TENANT_RELEASE_NAME, namespace, chart, values: { ...values('t1'), replicaCount }, timeoutSeconds: 60 });
      timings.push(performance.now() - started);
      expect(release.status).toBe('deployed');
      const d = await deployment(namespace);
      // Ready when the call returned, not some time later.
      expect(d?.status?.observedGeneration).toBe(d?.metadata?.generation);
      expect(d?.status?.readyReplicas).toBe(replicaCount);
      expect(d?.status?.updatedReplicas).toBe(replicaCount);
    }
    console.log(`install + ready: ${Math.round(timings[0]!)} ms; upgrade to 2 replicas + ready: ${Math.round(timings[1]!)} ms (helm --wait polls every 2 s)`);
  });

  it('uninstalls a first install that never becomes ready, with a retryable error', async () => {
    const namespace = await scratchNamespace();
    const err = await helm
      .upgradeInstall({ release: TENANT_RELEASE_NAME, namespace, chart, values: values('t2', unschedulable), timeoutSeconds: 10 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelmError);
    expect((err as HelmError).retryable).toBe(true);
    expect((err as HelmError).message).toMatch(/did not become ready within 10 s \(timed out waiting for Deployment\/tenant-app: 0 of 1 expected pods are ready\); the failed first install was uninstalled/);
    expect(await helm.status(TENANT_RELEASE_NAME, namespace)).toBeUndefined();
    await eventually(async () => (await deployment(namespace)) === undefined, 30_000, 'the Deployment to be gone');
  });

  it('rolls an upgrade that never becomes ready back to the revision before it', async () => {
    const namespace = await scratchNamespace();
    const good = values('t3');
    await helm.upgradeInstall({ release: TENANT_RELEASE_NAME, namespace, chart, values: good, timeoutSeconds: 60 });
    const err = await helm
      .upgradeInstall({ release: TENANT_RELEASE_NAME, namespace, chart, values: values('t3', unschedulable), timeoutSeconds: 10 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelmError);
    expect((err as HelmError).retryable).toBe(true);
    expect((err as HelmError).message).toContain('rolled back to revision 1');
    const release = await helm.status(TENANT_RELEASE_NAME, namespace);
    expect(release).toMatchObject({ revision: 3, status: 'deployed' });
    expect(await helm.values(TENANT_RELEASE_NAME, namespace)).toStrictEqual(good);
    const d = await deployment(namespace);
    expect(d?.spec?.template.spec?.nodeSelector).toBeUndefined();
    expect(d?.status?.readyReplicas).toBe(1);
  });
});
