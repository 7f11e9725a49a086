/**
 * The provisioning benchmark's baseline: the same Kubernetes writes and the same Helm install a
 * tenant gets from the workflow, made directly, with no Temporal and no PostgreSQL in between.
 * Compared side by side with the workflow path, it shows what orchestration costs.
 *
 * The objects come from the project's builders and the same `Kube` and `Helm` adapters the
 * activities use, in the order the provisioning saga writes them (ensureNamespace,
 * applyNetworkPolicies, applyResourceLimits, ensureSecrets, deployApp). Only the writes are
 * made: the activities' reads that guard against taking over someone else's namespace
 * (inspectTenant, the read before the namespace apply, helm history for a locked release) are
 * left out, so this is the floor the workflow is measured against. Teardown is uninstallApp
 * then deleteNamespace, waiting until the namespace is really gone, as the workflow does.
 */
import { randomBytes } from 'node:crypto';
import type { V1Namespace } from '@kubernetes/client-node';
import type { ActivityDeps } from '../activities';
import { tenantChartValues } from '../activities/app';
import { buildNamespace } from '../k8s/namespace';
import { buildNetworkPolicies } from '../k8s/network-policies';
import { buildLimitRange, buildResourceQuota } from '../k8s/quota';
import { buildTenantSecret, generateTenantCredentials } from '../k8s/secrets';
import { TENANT_RELEASE_NAME, tenantNamespace } from '../naming';

/** What the direct path needs: the activities' dependencies without the database. */
export type DirectDeps = Omit<ActivityDeps, 'db'>;

/** How often a deleted namespace is read until it is gone (the deleteNamespace activity's interval). */
const NAMESPACE_GONE_POLL_MS = 1_000;

/** The Kubernetes objects the provisioner itself writes for one tenant (the chart's come on top). */
export function provisionerObjectCount(deps: DirectDeps, tenantId: string, planId: string): number {
  const namespace = tenantNamespace(tenantId, deps.settings.namespacePrefix);
  const policies = buildNetworkPolicies({ namespace, tenantId, plan: planId, ingressNamespace: deps.settings.ingressNamespace });
  // namespace + policies + limit range + quota + secret
  return 1 + policies.length + 2 + 1;
}

/** Provisions one tenant directly; returns the Helm release revision. */
export async function provisionDirect(deps: DirectDeps, tenantId: string, planId: string): Promise<number> {
  const { kube, helm, settings } = deps;
  const plan = deps.plans.get(planId);
  const namespace = tenantNamespace(tenantId, settings.namespacePrefix);
  await kube.apply(buildNamespace({ name: namespace, tenantId, plan: plan.id }));
  for (const np of buildNetworkPolicies({ namespace, tenantId, plan: plan.id, egress: plan.egress, ingressNamespace: settings.ingressNamespace, network: settings.network })) {
    await kube.apply(np);
  }
  const limits = { namespace, tenantId, plan };
  await kube.apply(buildLimitRange(limits));
  await kube.apply(buildResourceQuota(limits));
  await kube.createIfAbsent(buildTenantSecret({ namespace, tenantId, plan: plan.id, data: generateTenantCredentials(deps.random ?? randomBytes) }));
  const release = await helm.upgradeInstall({
    release: TENANT_RELEASE_NAME,
    namespace,
    chart: settings.chart,
    values: tenantChartValues(tenantId, plan, false, settings),
    timeoutSeconds: settings.helmTimeoutSeconds,
  });
  return release.revision;
}

/** Removes one tenant directly: the release, then the namespace, waiting until Kubernetes has removed it. */
export async function deprovisionDirect(deps: DirectDeps, tenantId: string, signal?: AbortSignal): Promise<void> {
  const { kube, helm, settings } = deps;
  const namespace = tenantNamespace(tenantId, settings.namespacePrefix);
  await helm.uninstall({ release: TENANT_RELEASE_NAME, namespace, timeoutSeconds: settings.helmTimeoutSeconds });
  const ref = { apiVersion: 'v1', kind: 'Namespace', name: namespace };
  await kube.delete(ref);
  while (await kube.read<V1Namespace>(ref)) {
    if (signal?.aborted) throw new Error(`namespace ${namespace} was still there when the phase timed out`);
    await new Promise((r) => setTimeout(r, NAMESPACE_GONE_POLL_MS));
  }
}

/** Runs `fn` over `items` with at most `concurrency` at once; resolves when all have settled. */
export async function inPool<T>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  });
  await Promise.all(lanes);
}
