/**
 * The isolation check of one live tenant: its truth table against the other tenants, kube-dns,
 * kube-system, the ingress controller, namespaces of no tenant, the API server and (when given) a
 * host outside the cluster. Used by `tenantctl verify-isolation` and the isolation tests.
 */
import type { Kube } from '../k8s/client';
import type { PlanCatalogue } from '../plans';
import type { PodExec, PodRef } from './exec';
import { apiServerTargets, ingressPod, kubeDnsIp, kubeSystemTargets, otherTenantNamespaces, readyPod, tenantEndpoints } from './discover';
import { isolationProbes, runProbes, type Cell, type World } from './truth-table';

export { formatTable, type Cell } from './truth-table';
export { createPodExec } from './exec';
export { NotProbeable } from './discover';

/** The tenant-app image's probe (`tenant-app probe tcp|udp|http|dns HOST:PORT`). */
export const DEFAULT_PROBE_COMMAND = ['/tenant-app', 'probe'];

export interface VerifyOptions {
  /** Other tenants probed against (found by their labels), at most this many. */
  others?: number;
  /** Or exactly these tenant namespaces. */
  otherNamespaces?: string[];
  ingressNamespace: string;
  ingressPodSelector: Record<string, string>;
  /** Namespaces of no tenant whose first ready pod must not reach the tenant. */
  strangerNamespaces?: string[];
  /** A host outside the cluster that the caller owns; never guessed. */
  outside?: World['outside'];
  probeCommand?: string[];
  timeoutMs?: number;
  concurrency?: number;
}

export async function verifyTenantIsolation(
  deps: { kube: Kube; exec: PodExec; plans: PlanCatalogue },
  namespace: string,
  options: VerifyOptions,
): Promise<Cell[]> {
  const { kube, exec, plans } = deps;
  const egressOf = (plan: string) => {
    try {
      return plans.get(plan).egress;
    } catch {
      return 'none' as const;
    }
  };
  const subject = await tenantEndpoints(kube, namespace, 'A', egressOf);
  const otherNs = options.otherNamespaces ?? (await otherTenantNamespaces(kube, namespace, options.others ?? 1, subject.node));
  // Independent reads of the cluster, all at once.
  const [others, strangers, dnsIp, kubeSystem, ingress, apiServer] = await Promise.all([
    Promise.all(otherNs.map((ns, i) => tenantEndpoints(kube, ns, String.fromCharCode(66 + i), egressOf))),
    Promise.all(
      (options.strangerNamespaces ?? []).map(async (ns): Promise<PodRef | undefined> => {
        const pod = await readyPod(kube, ns);
        return pod && { namespace: ns, pod: pod.metadata!.name!, container: pod.spec!.containers[0]!.name };
      }),
    ).then((pods) => pods.filter((p): p is PodRef => p !== undefined)),
    kubeDnsIp(kube),
    kubeSystemTargets(kube),
    ingressPod(kube, options.ingressNamespace, options.ingressPodSelector),
    apiServerTargets(kube),
  ]);
  const world: World = {
    others,
    dns: { serviceIp: dnsIp, name: 'kubernetes.default.svc.cluster.local' },
    kubeSystem,
    ingress,
    strangers,
    apiServer,
    ...(options.outside ? { outside: options.outside } : {}),
  };
  return runProbes(exec, isolationProbes(subject, world), {
    command: options.probeCommand ?? DEFAULT_PROBE_COMMAND,
    timeoutMs: options.timeoutMs ?? 1_000,
    concurrency: options.concurrency ?? 8,
  });
}
