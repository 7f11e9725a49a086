/**
 * What the provisioning benchmark reads from the cluster besides its own requests: the API
 * server's request counters, the Helm release records, and what is left of a set of tenants.
 */
import https from 'node:https';
import type { KubeConfig, V1ConfigMap, V1Namespace, V1Node, V1Pod } from '@kubernetes/client-node';
import type { Kube } from '../k8s/client';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../k8s/labels';
import { TENANT_RELEASE_NAME, tenantNamespace } from '../naming';

/** Totals of `apiserver_request_total`, all clients, by verb (GET, LIST, WATCH, POST, PATCH, APPLY, DELETE, …). */
export type ApiRequestCounts = Map<string, number>;

/**
 * Scrapes the API server's own `/metrics` (needs a kubeconfig allowed to read it, as the local
 * stack's admin one is). Undefined when the endpoint cannot be read: the figure is then omitted.
 */
export async function scrapeApiRequests(kc: KubeConfig): Promise<ApiRequestCounts | undefined> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) return undefined;
  const url = new URL('/metrics', cluster.server);
  const options: https.RequestOptions = { method: 'GET', hostname: url.hostname, port: url.port, path: url.pathname, timeout: 15_000 };
  await kc.applyToHTTPSOptions(options);
  const text = await new Promise<string | undefined>((resolve) => {
    const req = https.request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  });
  if (text === undefined) return undefined;
  const counts: ApiRequestCounts = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const verb = /verb="([A-Z]+)"/.exec(line)?.[1];
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    // Health and discovery probes (no resource) are the control plane's own background noise.
    if (!verb || /[{,]resource=""/.test(line) || !Number.isFinite(value)) continue;
    counts.set(verb, (counts.get(verb) ?? 0) + value);
  }
  return counts;
}

/** Requests between two scrapes: total and the writes (create, apply/patch, update, delete). */
export function apiRequestDelta(before: ApiRequestCounts | undefined, after: ApiRequestCounts | undefined): { total: number; writes: number } | undefined {
  if (!before || !after) return undefined;
  let total = 0;
  let writes = 0;
  for (const [verb, n] of after) {
    const d = n - (before.get(verb) ?? 0);
    total += d;
    if (['POST', 'PUT', 'PATCH', 'APPLY', 'DELETE', 'DELETECOLLECTION'].includes(verb)) writes += d;
  }
  return { total, writes };
}

/**
 * The tenant release's revisions per namespace, from Helm's release records (the configmap
 * driver's ConfigMaps, labelled owner=helm): one list call for any number of tenants.
 */
export async function releaseRevisions(kube: Kube, namespaces: ReadonlySet<string>): Promise<Map<string, number[]>> {
  const records = await kube.list<V1ConfigMap>('v1', 'ConfigMap', undefined, `owner=helm,name=${TENANT_RELEASE_NAME}`);
  const byNamespace = new Map<string, number[]>();
  for (const cm of records) {
    const ns = cm.metadata?.namespace;
    if (!ns || !namespaces.has(ns)) continue;
    byNamespace.set(ns, [...(byNamespace.get(ns) ?? []), Number(cm.metadata?.labels?.version)]);
  }
  return byNamespace;
}

/** What is left in the cluster of these tenants: namespaces (terminating ones too) and release records. */
export async function leftovers(kube: Kube, tenantIds: readonly string[], prefix: string): Promise<{ namespaces: string[]; releases: string[] }> {
  const wanted = new Set(tenantIds.map((id) => tenantNamespace(id, prefix)));
  const namespaces = (await kube.list<V1Namespace>('v1', 'Namespace', undefined, `${LABEL_MANAGED_BY}=${MANAGED_BY}`))
    .map((ns) => ns.metadata?.name ?? '')
    .filter((name) => wanted.has(name));
  const releases = [...(await releaseRevisions(kube, wanted)).keys()];
  return { namespaces, releases };
}

/**
 * Pods the cluster can still take: the allocatable pods of its Ready nodes that tenants' pods can
 * land on, less the pods already bound to them. A burst bigger than this leaves tenants Pending,
 * which the benchmark would report as slow provisioning rather than as a cluster that is full.
 * Tainted nodes (the local stack's real node) take only pods that tolerate them, which the
 * benchmark's tenants do not.
 */
export async function podRoom(kube: Kube): Promise<{ readyNodes: number; capacity: number; free: number }> {
  const nodes = (await kube.list<V1Node>('v1', 'Node')).filter(
    (n) =>
      n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') &&
      !n.spec?.taints?.some((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute'),
  );
  const capacity = nodes.reduce((sum, n) => sum + Number(n.status?.allocatable?.pods ?? 0), 0);
  const names = new Set(nodes.map((n) => n.metadata?.name));
  const bound = (await kube.list<V1Pod>('v1', 'Pod')).filter((p) => names.has(p.spec?.nodeName) && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed').length;
  return { readyNodes: nodes.length, capacity, free: capacity - bound };
}
