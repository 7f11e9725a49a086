/**
 * The local stack works end to end: each real server answers the way the provisioner uses it.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { V1Deployment, V1Namespace, V1NetworkPolicy } from '@kubernetes/client-node';
import { createHelm } from '../../src/helm/helm';
import { ROOT, env, eventually, newTenantId, temporalClient, testDb, testKube, uniqueTaskQueue, withWorker } from './helpers';

const run = promisify(execFile);

describe('local stack smoke test', () => {
  const kube = testKube();
  const ns = `smoke-${newTenantId().slice(0, 8)}`;

  afterAll(async () => {
    await kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns });
  });

  it('applies a labelled namespace and a NetworkPolicy with server-side apply and reads them back', async () => {
    await kube.apply<V1Namespace>({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { 'smoke-test': 'yes' } },
    });
    await kube.apply<V1NetworkPolicy>({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'deny-all', namespace: ns },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    });

    const readNs = await kube.read<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', name: ns });
    expect(readNs?.metadata?.labels).toMatchObject({ 'smoke-test': 'yes' });
    expect(readNs?.metadata?.managedFields?.map((f) => f.manager)).toContain('tenant-provisioner');
    const np = await kube.read<V1NetworkPolicy>({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', name: 'deny-all', namespace: ns });
    expect(np?.spec?.policyTypes).toEqual(['Ingress', 'Egress']);

    // Applying the same object again is a no-op, not an error.
    await expect(
      kube.apply<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { 'smoke-test': 'yes' } } }),
    ).resolves.toBeDefined();
  });

  it('installs a chart with helm, sees its Deployment become Ready, and uninstalls it', async () => {
    const helm = createHelm({ binary: 'helm', kubeconfig: env('KUBECONFIG') });
    const release = await helm.upgradeInstall({
      release: 'hello',
      namespace: ns,
      chart: path.join(ROOT, 'test/fixtures/charts/hello'),
      values: { replicaCount: 1 },
      timeoutSeconds: 120,
    });
    expect(release).toMatchObject({ name: 'hello', namespace: ns, status: 'deployed', revision: 1 });
    const deployment = await eventually(
      async () => {
        const d = await kube.read<V1Deployment>({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'hello', namespace: ns });
        return d?.status?.readyReplicas === 1 ? d : undefined;
      },
      60_000,
      'the hello Deployment to be Ready',
    );
    expect(deployment.status?.readyReplicas).toBe(1);

    expect(await helm.uninstall({ release: 'hello', namespace: ns, timeoutSeconds: 60 })).toBe(true);
    expect(await helm.uninstall({ release: 'hello', namespace: ns, timeoutSeconds: 60 })).toBe(false);
    expect(await kube.read({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'hello', namespace: ns })).toBeUndefined();
  });

  it('runs a workflow with one activity on the real Temporal server through a real worker', async () => {
    const taskQueue = uniqueTaskQueue('smoke');
    const { client, connection } = await temporalClient();
    try {
      const result: string = await withWorker(
        {
          taskQueue,
          workflowsPath: require.resolve('../fixtures/workflows/hello'),
          activities: { greet: (name: string) => Promise.resolve(`hello, ${name}`) },
        },
        () => client.workflow.execute<(name: string) => Promise<string>>('hello', { taskQueue, workflowId: `smoke-${taskQueue}`, args: ['stack'] }),
      );
      expect(result).toBe('hello, stack');
    } finally {
      await connection.close();
    }
  });

  it('writes and reads a row through the Prisma client on a freshly migrated database', async () => {
    const db = testDb();
    try {
      const id = newTenantId();
      await db.tenant.create({ data: { id, plan: 'starter', status: 'provisioning', workflowId: `tenant-${id}` } });
      const row = await db.tenant.findUniqueOrThrow({ where: { id } });
      expect(row).toMatchObject({ id, plan: 'starter', status: 'provisioning', namespace: null, metadata: {} });
      // The migration's CHECK constraint keeps the status set closed.
      await expect(db.tenant.update({ where: { id }, data: { status: 'bogus' } })).rejects.toThrow();
    } finally {
      await db.$disconnect();
    }
  });

  it('has the pinned tools on PATH', async () => {
    const { stdout } = await run('helm', ['version', '--template', '{{.Version}}']);
    expect(stdout).toMatch(/^v3\./);
  });
});
