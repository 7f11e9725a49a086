/** Activities on the tenant's namespace and the isolation objects in it (policies, quota, limits). */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { V1Namespace } from '@kubernetes/client-node';
import { LABEL_MANAGED_BY, LABEL_TENANT_ID, MANAGED_BY } from '../k8s/labels';
import { TENANT_RELEASE_NAME } from '../naming';
import { buildNamespace } from '../k8s/namespace';
import { NETWORK_POLICY_NAMES, buildNetworkPolicies } from '../k8s/network-policies';
import { LIMIT_RANGE_NAME, RESOURCE_QUOTA_NAME, buildLimitRange, buildResourceQuota } from '../k8s/quota';
import type { ActivityDeps, StepKit, TenantRef } from './common';

/** How often a deleted namespace is polled until Kubernetes has really removed it. */
const NAMESPACE_GONE_POLL_MS = 1_000;

export function namespaceActivities(deps: ActivityDeps, kit: StepKit) {
  const { kube, helm, settings } = deps;
  const { plan, step, k8s } = kit;
  return {
    /** Step 3: the namespace, labelled, with Pod Security Admission `restricted`. Also re-labels on plan change. */
    async ensureNamespace(input: TenantRef & { plan: string }): Promise<void> {
      const p = plan(input.plan);
      await step(input.tenantId, 'ensureNamespace', async () => {
        const wanted = buildNamespace({ name: input.namespace, tenantId: input.tenantId, plan: p.id });
        // A new tenant's namespace is made in one request; one that is already there is read
        // (whose is it, is it being deleted?) and applied again only where its labels differ (a
        // plan change, a label removed by hand).
        if (await k8s(`create Namespace ${input.namespace}`, () => kube.createIfAbsent(wanted))) return;
        const existing = await k8s(`read Namespace ${input.namespace}`, () =>
          kube.read<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', name: input.namespace }),
        );
        const owner = existing?.metadata?.labels?.[LABEL_TENANT_ID];
        if (existing && owner !== input.tenantId) {
          throw ApplicationFailure.nonRetryable(
            `namespace ${input.namespace} already exists and belongs to ${owner ? `tenant ${owner}` : 'nobody managed by the provisioner'}; refusing to take it over`,
            'NamespaceConflict',
          );
        }
        if (existing?.metadata?.deletionTimestamp) {
          // A previous deprovision is still draining it: wait (retry) rather than fight the deletion.
          throw ApplicationFailure.retryable(`namespace ${input.namespace} is still being deleted`, 'NamespaceTerminating');
        }
        const labels = existing?.metadata?.labels ?? {};
        if (existing && Object.entries(wanted.metadata?.labels ?? {}).every(([k, v]) => labels[k] === v)) return;
        await k8s(`apply Namespace ${input.namespace}`, () => kube.apply(wanted));
      });
    },

    /**
     * Step 4: default-deny plus the few allowed paths (same namespace, DNS, ingress controller,
     * internet egress as the plan says). Also run on a plan change, whose egress may differ.
     */
    async applyNetworkPolicies(input: TenantRef & { plan: string }): Promise<void> {
      const p = plan(input.plan);
      await step(input.tenantId, 'applyNetworkPolicies', async () => {
        const policies = buildNetworkPolicies({ ...input, plan: p.id, egress: p.egress, ingressNamespace: settings.ingressNamespace, network: settings.network });
        for (const np of policies) {
          await k8s(`apply NetworkPolicy ${input.namespace}/${np.metadata?.name}`, () => kube.apply(np));
        }
      });
    },

    /** Step 5: ResourceQuota and LimitRange (a quota alone rejects pods that set no requests). */
    async applyResourceLimits(input: TenantRef & { plan: string }): Promise<void> {
      const p = plan(input.plan);
      await step(input.tenantId, 'applyResourceLimits', async () => {
        const args = { namespace: input.namespace, tenantId: input.tenantId, plan: p };
        await k8s(`apply LimitRange in ${input.namespace}`, () => kube.apply(buildLimitRange(args)));
        await k8s(`apply ResourceQuota in ${input.namespace}`, () => kube.apply(buildResourceQuota(args)));
      });
    },

    /**
     * What of the tenant exists before a provisioning run touches anything, so that the run's
     * compensations undo only what it created itself: a namespace, credentials or release that
     * were already there (a live tenant whose earlier run closed) are kept if the run fails.
     */
    async inspectTenant(input: TenantRef): Promise<{ namespace: boolean; secret: boolean; release: boolean }> {
      return step(input.tenantId, 'inspectTenant', async () => {
        const ns = await k8s(`read Namespace ${input.namespace}`, () =>
          kube.read<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', name: input.namespace }),
        );
        if (!ns) return { namespace: false, secret: false, release: false };
        // The worker may not read Secrets: credentials in a namespace that was already there are
        // counted as existing, so a failed run never deletes a live tenant's credentials.
        const release = await helm.status(TENANT_RELEASE_NAME, input.namespace);
        return { namespace: true, secret: true, release: !!release };
      });
    },

    /** Every namespace labelled as the tenant's (a cleanup run removes them all, whatever their name). */
    async findTenantNamespaces(input: { tenantId: string }): Promise<string[]> {
      return step(input.tenantId, 'findTenantNamespaces', async () => {
        const found = await k8s(`list Namespaces of tenant ${input.tenantId}`, () =>
          kube.list<V1Namespace>('v1', 'Namespace', undefined, `${LABEL_TENANT_ID}=${input.tenantId},${LABEL_MANAGED_BY}=${MANAGED_BY}`),
        );
        return found.map((ns) => ns.metadata!.name!).sort();
      });
    },

    // --- compensations and teardown: all tolerate "already gone" ------------------------------

    async removeResourceLimits(input: TenantRef): Promise<void> {
      await step(
        input.tenantId,
        'removeResourceLimits',
        async () => {
          await k8s(`delete ResourceQuota in ${input.namespace}`, () =>
            kube.delete({ apiVersion: 'v1', kind: 'ResourceQuota', name: RESOURCE_QUOTA_NAME, namespace: input.namespace }));
          await k8s(`delete LimitRange in ${input.namespace}`, () =>
            kube.delete({ apiVersion: 'v1', kind: 'LimitRange', name: LIMIT_RANGE_NAME, namespace: input.namespace }));
        },
        true,
      );
    },

    async removeNetworkPolicies(input: TenantRef): Promise<void> {
      await step(
        input.tenantId,
        'removeNetworkPolicies',
        async () => {
          for (const name of Object.values(NETWORK_POLICY_NAMES)) {
            await k8s(`delete NetworkPolicy ${input.namespace}/${name}`, () =>
              kube.delete({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', name, namespace: input.namespace }));
          }
        },
        true,
      );
    },

    /** Deletes the tenant's namespace and waits until Kubernetes has really removed it. */
    async deleteNamespace(input: TenantRef): Promise<void> {
      const ctx = Context.current();
      await step(
        input.tenantId,
        'deleteNamespace',
        async () => {
          const ref = { apiVersion: 'v1', kind: 'Namespace', name: input.namespace };
          const existing = await k8s(`read Namespace ${input.namespace}`, () => kube.read<V1Namespace>(ref));
          if (!existing) return;
          const owner = existing.metadata?.labels?.[LABEL_TENANT_ID];
          if (owner !== input.tenantId) {
            throw ApplicationFailure.nonRetryable(
              `namespace ${input.namespace} is not labelled as tenant ${input.tenantId}'s (${LABEL_TENANT_ID}=${owner ?? 'unset'}); refusing to delete it`,
              'NamespaceConflict',
            );
          }
          if (!existing.metadata?.deletionTimestamp) {
            await k8s(`delete Namespace ${input.namespace}`, () => kube.delete(ref));
          }
          const started = Date.now();
          for (;;) {
            const ns = await k8s(`read Namespace ${input.namespace}`, () => kube.read<V1Namespace>(ref));
            if (!ns) return;
            ctx.heartbeat({ waitingForNamespaceGoneMs: Date.now() - started, phase: ns.status?.phase });
            await ctx.sleep(NAMESPACE_GONE_POLL_MS);
          }
        },
        true,
      );
    },
  };
}
