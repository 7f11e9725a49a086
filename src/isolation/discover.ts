/**
 * Finds what a truth table probes in a live cluster: a ready pod and the Service of each tenant,
 * kube-dns, the other kube-system pods, the ingress controller's pods, the API server.
 */
import type { V1EndpointSlice, V1Namespace, V1Pod, V1Service } from '@kubernetes/client-node';
import type { Kube } from '../k8s/client';
import { LABEL_MANAGED_BY, LABEL_PLAN, LABEL_TENANT_ID, MANAGED_BY } from '../k8s/labels';
import type { Egress } from '../k8s/network-policies';
import { TENANT_RELEASE_NAME } from '../naming';
import type { PodRef } from './exec';
import type { HostPort, TenantEndpoints } from './truth-table';

/** The tenant chart's app container. */
export const APP_CONTAINER = 'app';

function isReady(p: V1Pod): boolean {
  return !!p.status?.podIP && p.status.phase === 'Running' && !p.metadata?.deletionTimestamp && !!p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** A ready pod among those matching `selector`, or undefined. */
export async function readyPod(kube: Kube, namespace: string, selector?: string): Promise<(V1Pod & { status: { podIP: string } }) | undefined> {
  const pods = await kube.list<V1Pod>('v1', 'Pod', namespace, selector);
  return pods.filter(isReady).sort((x, y) => (x.metadata!.name! < y.metadata!.name! ? -1 : 1))[0] as (V1Pod & { status: { podIP: string } }) | undefined;
}

export class NotProbeable extends Error {
  override name = 'NotProbeable';
}

/** A tenant's ready app pod and its Service, by the tenant's namespace. */
export async function tenantEndpoints(kube: Kube, namespace: string, label: string, egressOf: (plan: string) => Egress): Promise<TenantEndpoints> {
  const selector = `app.kubernetes.io/instance=${TENANT_RELEASE_NAME}`;
  const [ns, pod, services] = await Promise.all([
    kube.read<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', name: namespace }),
    readyPod(kube, namespace, selector),
    kube.list<V1Service>('v1', 'Service', namespace, selector),
  ]);
  if (!ns) throw new NotProbeable(`namespace ${namespace} does not exist`);
  const labels = ns.metadata?.labels ?? {};
  if (labels[LABEL_MANAGED_BY] !== MANAGED_BY || !labels[LABEL_TENANT_ID]) throw new NotProbeable(`namespace ${namespace} is not a tenant namespace of the provisioner`);
  if (!pod) throw new NotProbeable(`no ready pod of ${TENANT_RELEASE_NAME} in ${namespace}: the app must run (on a node that enforces NetworkPolicies) to be probed`);
  const svc = services.find((s) => s.spec?.clusterIP && s.spec.clusterIP !== 'None');
  if (!svc) throw new NotProbeable(`no Service of ${TENANT_RELEASE_NAME} with a cluster IP in ${namespace}`);
  const port = (name: string) => svc.spec?.ports?.find((p) => p.name === name)?.port;
  return {
    label,
    namespace,
    egress: egressOf(labels[LABEL_PLAN] ?? ''),
    pod: { namespace, pod: pod.metadata!.name!, container: APP_CONTAINER, ip: pod.status.podIP },
    ...(pod.spec?.nodeName ? { node: pod.spec.nodeName } : {}),
    serviceIp: svc.spec!.clusterIP!,
    httpPort: port('http') ?? 8080,
    ...(port('udp') ? { udpPort: port('udp') } : {}),
  };
}

/**
 * Other tenant namespaces with a ready app, at most `max`, those whose app runs on `node` first
 * (the subject's own node: where its policies must hold against a neighbour, and a node whose
 * pods can be probed at all when the cluster also has simulated ones). One cluster-wide list.
 */
export async function otherTenantNamespaces(kube: Kube, except: string, max: number, node?: string): Promise<string[]> {
  const [namespaces, pods] = await Promise.all([
    kube.list<V1Namespace>('v1', 'Namespace', undefined, `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_TENANT_ID}`),
    kube.list<V1Pod>('v1', 'Pod', undefined, `app.kubernetes.io/instance=${TENANT_RELEASE_NAME}`),
  ]);
  const tenants = new Set(namespaces.map((n) => n.metadata!.name!).filter((n) => n !== except));
  const nodeOf = new Map<string, string>();
  for (const p of pods.filter(isReady)) {
    const ns = p.metadata!.namespace!;
    if (tenants.has(ns) && (!nodeOf.has(ns) || p.spec?.nodeName === node)) nodeOf.set(ns, p.spec?.nodeName ?? '');
  }
  const rank = (ns: string) => (nodeOf.get(ns) === node ? 0 : 1);
  return [...nodeOf.keys()].sort((x, y) => rank(x) - rank(y) || (x < y ? -1 : 1)).slice(0, max);
}

/**
 * kube-system pods on the ports a tenant may not use: every serving port of every pod with its
 * own address, kube-dns included (on anything but 53). Host-network pods share the node's address
 * and are left out.
 */
export async function kubeSystemTargets(kube: Kube, max = 6): Promise<HostPort[]> {
  const pods = (await kube.list<V1Pod>('v1', 'Pod', 'kube-system')).filter((p) => isReady(p) && !p.spec?.hostNetwork);
  const targets: HostPort[] = [];
  for (const p of pods) {
    for (const c of p.spec?.containers ?? []) {
      const ports = (c.ports ?? []).filter((cp) => (cp.protocol ?? 'TCP') === 'TCP' && cp.containerPort !== 53).map((cp) => cp.containerPort);
      const probed = [...(c.readinessProbe?.httpGet ? [c.readinessProbe.httpGet.port] : []), ...(c.livenessProbe?.httpGet ? [c.livenessProbe.httpGet.port] : [])];
      for (const port of [...new Set([...ports, ...probed.filter((x): x is number => typeof x === 'number')])]) {
        targets.push({ label: `kube-system/${p.metadata!.name!}`, ip: p.status!.podIP!, port });
      }
    }
  }
  return targets.slice(0, max);
}

/** The kube-dns Service's cluster IP. */
export async function kubeDnsIp(kube: Kube): Promise<string> {
  const svc = await kube.read<V1Service>({ apiVersion: 'v1', kind: 'Service', name: 'kube-dns', namespace: 'kube-system' });
  if (!svc?.spec?.clusterIP) throw new NotProbeable('no Service kube-system/kube-dns: the cluster has no DNS to probe');
  return svc.spec.clusterIP;
}

/** The API server: the `kubernetes` Service and the addresses behind it. */
export async function apiServerTargets(kube: Kube): Promise<HostPort[]> {
  const svc = await kube.read<V1Service>({ apiVersion: 'v1', kind: 'Service', name: 'kubernetes', namespace: 'default' });
  const targets: HostPort[] = [];
  if (svc?.spec?.clusterIP) targets.push({ label: 'API server Service', ip: svc.spec.clusterIP, port: svc.spec.ports?.[0]?.port ?? 443 });
  const slices = await kube.list<V1EndpointSlice>('discovery.k8s.io/v1', 'EndpointSlice', 'default', 'kubernetes.io/service-name=kubernetes');
  for (const s of slices) {
    const port = s.ports?.[0]?.port ?? 6443;
    for (const e of s.endpoints ?? []) for (const ip of e.addresses) targets.push({ label: 'API server endpoint', ip, port });
  }
  return targets;
}

/** A ready pod of the ingress controller (in its namespace, with its labels), as a probe source. */
export async function ingressPod(kube: Kube, namespace: string, selector: Record<string, string>): Promise<PodRef | undefined> {
  const sel = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
  const pod = await readyPod(kube, namespace, sel || undefined);
  return pod ? { namespace, pod: pod.metadata!.name!, container: pod.spec!.containers[0]!.name } : undefined;
}
