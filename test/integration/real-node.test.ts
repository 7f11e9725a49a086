/**
 * The local stack's real node (scripts/real-node.sh) runs pods for real: kubelet starts them and
 * runs their readiness probes, the CNI bridge connects them, kube-proxy serves Services, CoreDNS
 * answers, and kube-network-policies enforces NetworkPolicies. Every claim is checked by traffic
 * from inside a pod (`tenant-app probe`, 1 s timeout, a bounded number of tries).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { V1Namespace, V1NetworkPolicy, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import { env, eventually, newTenantId, testKube } from './helpers';

const run = promisify(execFile);

const REAL = process.env.STACK_REAL_NODE === '1';
const REASON = process.env.STACK_REAL_NODE_REASON ?? 'STACK_REAL_NODE is not set (scripts/stack.sh up writes it)';
// A machine that cannot run the node skips; a node that failed to start on one that can is a failure.
const FAILED = !REAL && REASON.startsWith('failed');
if (!REAL && !FAILED) console.warn(`real-node tests skipped: ${REASON}`);

const NODE = process.env.STACK_REAL_NODE_NAME ?? 'real-node';
const PROBE_TRIES = 10;

interface ProbeResult {
  code: number;
  out: string;
}

/** `tenant-app probe` inside a pod: exit 0 answered, 1 refused or timed out, 2 bad usage. */
async function probe(ns: string, pod: string, args: string[]): Promise<ProbeResult> {
  try {
    const { stdout } = await run(
      'kubectl',
      ['--kubeconfig', env('KUBECONFIG'), '--request-timeout', '15s', 'exec', '-n', ns, pod, '--', '/tenant-app', 'probe', ...args, '--timeout', '1s'],
      { timeout: 20_000 },
    );
    return { code: 0, out: stdout.trim() };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code === 'number' && e.code !== 0) return { code: e.code, out: `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() };
    throw new Error(`kubectl exec into ${ns}/${pod} failed: ${e.stderr ?? e.message}`);
  }
}

/** Probes until the result has the wanted exit code, at most PROBE_TRIES times. */
async function probeUntil(ns: string, pod: string, args: string[], want: 0 | 1): Promise<ProbeResult> {
  let last: ProbeResult | undefined;
  for (let i = 0; i < PROBE_TRIES; i++) {
    last = await probe(ns, pod, args);
    if (last.code === want) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`probe ${args.join(' ')} from ${ns}/${pod}: wanted exit ${want}, got ${last?.code} after ${PROBE_TRIES} tries (${last?.out})`);
}

function placement(): Pick<NonNullable<V1Pod['spec']>, 'nodeSelector' | 'tolerations'> {
  return JSON.parse(env('TENANT_POD_PLACEMENT')) as Pick<NonNullable<V1Pod['spec']>, 'nodeSelector' | 'tolerations'>;
}

function appPod(ns: string): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'app', namespace: ns, labels: { app: 'tenant-app' } },
    spec: {
      ...placement(),
      terminationGracePeriodSeconds: 5,
      containers: [
        {
          name: 'app',
          image: env('TENANT_APP_IMAGE'),
          imagePullPolicy: 'Never',
          env: [
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          ],
          ports: [
            { name: 'http', containerPort: 8080, protocol: 'TCP' },
            { name: 'udp', containerPort: 8081, protocol: 'UDP' },
          ],
          readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1 },
          resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } },
          securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

const describeReal = REAL || FAILED ? describe : describe.skip;

describeReal('the real node', () => {
  const kube = testKube();
  const id = newTenantId().slice(0, 8);
  const nsA = `rn-a-${id}`;
  const nsB = `rn-b-${id}`;
  let podB: V1Pod;
  let svcB: V1Service;

  beforeAll(async () => {
    if (FAILED) return;
    for (const ns of [nsA, nsB]) {
      await kube.apply<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      // Pods need the namespace's default ServiceAccount, which the controller manager adds.
      await eventually(() => kube.read({ apiVersion: 'v1', kind: 'ServiceAccount', name: 'default', namespace: ns }), 30_000, `${ns}/default ServiceAccount`);
      await kube.apply(appPod(ns));
    }
    svcB = await kube.apply<V1Service>({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'app', namespace: nsB },
      spec: {
        selector: { app: 'tenant-app' },
        ports: [
          { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' },
          { name: 'udp', port: 8081, targetPort: 8081, protocol: 'UDP' },
        ],
      },
    });
    for (const ns of [nsA, nsB]) {
      const pod = await eventually(
        async () => {
          const p = await kube.read<V1Pod>({ apiVersion: 'v1', kind: 'Pod', name: 'app', namespace: ns });
          return p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined;
        },
        90_000,
        `pod ${ns}/app Ready through its readiness probe`,
      );
      if (ns === nsB) podB = pod;
    }
  }, 180_000);

  afterAll(async () => {
    if (FAILED) return;
    await Promise.all([nsA, nsB].map((name) => kube.delete({ apiVersion: 'v1', kind: 'Namespace', name })));
  });

  if (FAILED) {
    it('started', () => {
      throw new Error(`the real node did not start on a machine that can run it: ${REASON}`);
    });
    return;
  }

  it('is Ready, labelled and tainted, with a small node allocatable', async () => {
    const node = await kube.read<V1Node>({ apiVersion: 'v1', kind: 'Node', name: NODE });
    expect(node?.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node?.metadata?.labels).toMatchObject({ 'tenant-provisioner.dev/node-kind': 'real' });
    expect(node?.spec?.taints).toContainEqual(expect.objectContaining({ key: 'tenant-provisioner.dev/real-node', value: 'true', effect: 'NoSchedule' }));
    expect(node?.status?.allocatable?.cpu).toBe('1500m');
    const memKi = Number(/^(\d+)Ki$/.exec(node?.status?.allocatable?.memory ?? '')?.[1]);
    expect(memKi / 1024 / 1024).toBeCloseTo(4, 1);
    // A real kubelet registered it, not kwok: no kwok annotation, a real container runtime.
    expect(node?.metadata?.annotations?.['kwok.x-k8s.io/node']).toBeUndefined();
    expect(node?.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\//);
  });

  it("runs the isolation check's sentinel and a stand-in ingress controller on it, ready", async () => {
    for (const [namespace, name] of [['tenant-provisioner-sentinel', 'isolation-sentinel'], ['ingress-nginx', 'ingress-nginx']] as const) {
      const pods = await kube.list<V1Pod>('v1', 'Pod', namespace, `app.kubernetes.io/name=${name}`);
      const ready = pods.filter((p) => p.spec?.nodeName === NODE && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      expect({ namespace, ready: ready.length }).toStrictEqual({ namespace, ready: 1 });
    }
    expect(process.env.ISOLATION_CHECK).toBe('on');
  });

  it('ran the pods on the real node and serves exec into them', async () => {
    expect(podB.spec?.nodeName).toBe(NODE);
    expect(podB.status?.podIP).toMatch(/^10\.244\.0\./);
    const r = await probe(nsA, 'app', ['tcp', '127.0.0.1:8080']);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/^OK tcp 127\.0\.0\.1:8080/);
  });

  it('connects pod to pod across namespaces over TCP and UDP', async () => {
    const ip = podB.status!.podIP!;
    const http = await probeUntil(nsA, 'app', ['http', `${ip}:8080`], 0);
    expect(http.out).toContain(`200 ${nsB}/app`);
    const udp = await probeUntil(nsA, 'app', ['udp', `${ip}:8081`], 0);
    expect(udp.out).toContain(`echo ${nsB}/app ping`);
  });

  it('answers on a Service ClusterIP (kube-proxy), TCP and UDP', async () => {
    const clusterIP = svcB.spec!.clusterIP!;
    expect((await probeUntil(nsA, 'app', ['http', `${clusterIP}:80`], 0)).out).toContain(`200 ${nsB}/app`);
    expect((await probeUntil(nsA, 'app', ['udp', `${clusterIP}:8081`], 0)).out).toContain(`echo ${nsB}/app`);
  });

  it("resolves a Service's name through kube-dns, asked directly and through the pod's resolv.conf", async () => {
    const clusterIP = svcB.spec!.clusterIP!;
    const dns = await probeUntil(nsA, 'app', ['dns', `${env('KUBE_DNS_IP')}:53`, '--name', `app.${nsB}.svc.cluster.local`], 0);
    expect(dns.out).toContain(clusterIP);
    // The short name needs the search path kubelet wrote into the pod.
    expect((await probeUntil(nsA, 'app', ['http', `app.${nsB}:80`], 0)).out).toContain(`200 ${nsB}/app`);
  });

  it('enforces NetworkPolicy: a default deny blocks the probe, an allow rule lets it through again', async () => {
    const ip = podB.status!.podIP!;
    await kube.apply<V1NetworkPolicy>({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'default-deny', namespace: nsB },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
    const denied = await probeUntil(nsA, 'app', ['tcp', `${ip}:8080`], 1);
    expect(denied.out).toMatch(/^FAIL tcp/);
    expect((await probeUntil(nsA, 'app', ['udp', `${ip}:8081`], 1)).out).toMatch(/^FAIL udp/);
    // Still denied on the next, fresh connection: the verdict is the policy's, not a lost packet.
    expect((await probe(nsA, 'app', ['tcp', `${ip}:8080`])).code).toBe(1);

    await kube.apply<V1NetworkPolicy>({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'allow-from-a', namespace: nsB },
      spec: {
        podSelector: {},
        policyTypes: ['Ingress'],
        ingress: [{ _from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': nsA } } }] }],
      },
    });
    expect((await probeUntil(nsA, 'app', ['http', `${ip}:8080`], 0)).out).toContain(`200 ${nsB}/app`);
    expect((await probeUntil(nsA, 'app', ['udp', `${ip}:8081`], 0)).out).toContain(`echo ${nsB}/app`);
  });
});
