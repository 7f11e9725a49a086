/**
 * charts/provisioner against the real kube-apiserver, for every scenario in ci/*-values.yaml:
 * `helm lint --strict`, `helm template --validate` (the cluster's own API versions and schemas, and
 * its version against the chart's kubeVersion), and a server-side dry-run apply into a namespace
 * that enforces Pod Security "restricted" (admission runs; nothing is created). Plus the version and
 * capability switches.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, env } from './helpers';

const CHART = path.join(ROOT, 'charts/provisioner');
const SCENARIOS = readdirSync(path.join(CHART, 'ci')).filter((f) => f.endsWith('-values.yaml')).sort();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('charts/provisioner on the local Kubernetes', () => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'chart-test-'));
  const ns = `chart-test-${process.pid}-${Date.now().toString(36)}`;
  // A private discovery cache: a CRD created below must not hide behind a stale one.
  const toolEnv = { ...process.env, KUBECONFIG: env('KUBECONFIG'), KUBECACHEDIR: path.join(cache, 'kube'), HELM_CACHE_HOME: path.join(cache, 'helm') };

  function run(cmd: string, args: string[], input?: string): Promise<Run> {
    return new Promise((resolve) => {
      const child = execFile(cmd, args, { env: toolEnv, maxBuffer: 16 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
      if (input !== undefined) child.stdin!.end(input);
    });
  }

  beforeAll(async () => {
    const nsYaml = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' } },
    });
    expect(await run('kubectl', ['apply', '-f', '-'], nsYaml)).toMatchObject({ code: 0 });
    // The Prometheus Operator's CRD, as a cluster with it installed has (schema kept open): created
    // once and left in place, since another run may use it concurrently.
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'servicemonitors.monitoring.coreos.com' },
      spec: {
        group: 'monitoring.coreos.com',
        scope: 'Namespaced',
        names: { kind: 'ServiceMonitor', listKind: 'ServiceMonitorList', plural: 'servicemonitors', singular: 'servicemonitor' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    };
    expect(await run('kubectl', ['apply', '--server-side', '--force-conflicts', '--field-manager', 'chart-test', '-f', '-'], JSON.stringify(crd))).toMatchObject({ code: 0 });
    expect(await run('kubectl', ['wait', '--for=condition=Established', '--timeout=30s', 'crd/servicemonitors.monitoring.coreos.com'])).toMatchObject({ code: 0 });
  });

  afterAll(async () => {
    await run('kubectl', ['delete', 'namespace', ns, '--wait=false']);
    rmSync(cache, { recursive: true, force: true });
  });

  it('has a ci/ scenario for each optional feature', () => {
    expect(SCENARIOS).toEqual(expect.arrayContaining(['default-values.yaml', 'production-values.yaml', 'monitoring-values.yaml', 'minimal-values.yaml']));
  });

  it.each(SCENARIOS)('%s: lints, renders against the cluster, and passes server-side admission', async (file) => {
    const values = path.join(CHART, 'ci', file);
    const lint = await run('helm', ['lint', '--strict', CHART, '-f', values]);
    expect({ code: lint.code, errors: lint.stdout.split('\n').filter((l) => /\[(ERROR|WARNING)\]/.test(l)) }).toEqual({ code: 0, errors: [] });

    const rendered = await run('helm', ['template', 'ci', CHART, '-f', values, '--namespace', ns, '--validate']);
    expect({ code: rendered.code, stderr: rendered.stderr }).toEqual({ code: 0, stderr: '' });
    expect(rendered.stdout).toMatch(/^kind: ServiceAccount$/m);

    const applied = await run('kubectl', ['apply', '--dry-run=server', '-n', ns, '-f', '-'], rendered.stdout);
    // Pod Security "restricted" warns on Deployments and Jobs whose pods it would refuse.
    expect({ code: applied.code, stderr: applied.stderr }).toEqual({ code: 0, stderr: '' });
    expect(applied.stdout).toMatch(/created \(server dry run\)/);
  });

  it('refuses Kubernetes older than 1.30 (ValidatingAdmissionPolicy v1, preStop sleep)', async () => {
    const old = await run('helm', ['template', 'ci', CHART, '--kube-version', '1.29.9']);
    expect(old.code).not.toBe(0);
    expect(old.stderr).toMatch(/requires kubeVersion: >=1\.30\.0-0/);
    expect((await run('helm', ['template', 'ci', CHART, '--kube-version', '1.30.0'])).code).toBe(0);
  });

  it('renders the admission policy, PDBs, migration Job, probes and preStop only as configured', async () => {
    const render = (...set: string[]) => run('helm', ['template', 'ci', CHART, '--kube-version', '1.30.0', ...set.flatMap((s) => ['--set', s])]).then((r) => r.stdout);
    const all = await render();
    expect(all).toMatch(/^kind: ValidatingAdmissionPolicy$/m);
    expect(all.match(/^kind: PodDisruptionBudget$/gm)).toHaveLength(2);
    expect(all).toMatch(/helm.sh\/hook: pre-install,pre-upgrade/);
    expect(all).toMatch(/preStop:\n\s+sleep:\n\s+seconds: 5/);
    expect(all).toMatch(/startupProbe:\n\s+httpGet:\n\s+path: \/readyz\n\s+port: health/);
    expect(all).toMatch(/name: WORKER_HEALTH_BIND\n\s+value: "0.0.0.0:8081"/);
    // The worker's heaps are bounded below its memory limit; 0 leaves Node.js's default.
    expect(all).toMatch(/name: NODE_OPTIONS\n\s+value: "--max-old-space-size=128 --max-semi-space-size=4"/);
    expect(await render('worker.semiSpaceMb=0')).toMatch(/name: NODE_OPTIONS\n\s+value: "--max-old-space-size=128"\n/);
    expect(await render('worker.heapMb=0', 'worker.semiSpaceMb=0')).not.toMatch(/NODE_OPTIONS/);
    expect(all).not.toMatch(/kind: ServiceMonitor/);

    expect(all.match(/^kind: ValidatingAdmissionPolicy$/gm)).toHaveLength(2);
    const off = await render('admissionPolicy.enabled=false', 'rbac.create=false', 'podDisruptionBudget.enabled=false', 'migrations.enabled=false');
    expect(off).toMatch(/^kind: Deployment$/m);
    expect(off).not.toMatch(/kind: ValidatingAdmissionPolicy|kind: PodDisruptionBudget|kind: Job/);
    // The worker's ClusterRole without the policy would let it write workloads anywhere: refused.
    const rbacWithoutPolicy = await run('helm', ['template', 'ci', CHART, '--kube-version', '1.30.0', '--set', 'admissionPolicy.enabled=false']);
    expect(rbacWithoutPolicy.code).not.toBe(0);
    expect(rbacWithoutPolicy.stderr).toMatch(/rbac.create needs admissionPolicy.enabled/);

    // A ServiceMonitor needs the CRD; without it the chart says so instead of failing at apply.
    const noCrd = await run('helm', ['template', 'ci', CHART, '--kube-version', '1.30.0', '--set', 'serviceMonitor.enabled=true']);
    expect(noCrd.stderr).toMatch(/needs the Prometheus Operator's ServiceMonitor CRD/);
  });
});
