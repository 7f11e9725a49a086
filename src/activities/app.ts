/** The tenant's application: a Helm release of the tenant chart in its namespace. */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { V1ConfigMap, V1Deployment } from '@kubernetes/client-node';
import { helmWorstCaseSeconds } from '../helm/helm';
import { TENANT_SECRET_NAME } from '../k8s/secrets';
import { TENANT_RELEASE_NAME } from '../naming';
import { parseQuantity, type Plan } from '../plans';
import type { ActivityDeps, StepKit, TenantRef } from './common';

/** Which comes first in a plan change: the app (shrinking) or quota and limit range (growing). */
export type PlanChangeOrder = 'app-first' | 'limits-first';

/**
 * A downgrade shrinks the app before the quota is lowered: during the rolling update the old and
 * the new pod run side by side, and a lowered quota (or limit-range maximum) would reject the new
 * one. An upgrade raises quota and limits first, for the same reason the other way round.
 */
export function planChangeOrder(from: Plan, to: Plan): PlanChangeOrder {
  const q = (p: Plan) => [p.quota.requestsCpu, p.quota.requestsMemory, p.quota.limitsCpu, p.quota.limitsMemory, p.limitRange.maxCpu, p.limitRange.maxMemory].map(parseQuantity);
  const before = q(from);
  const after = q(to);
  const lowers = after.some((v, i) => v < before[i]!) || to.quota.pods < from.quota.pods;
  return lowers ? 'app-first' : 'limits-first';
}

/** The tenant chart's values: the release as the tenant's plan wants it (0 replicas when suspended). */
export function tenantChartValues(
  tenantId: string,
  p: Plan,
  suspended: boolean,
  settings: Pick<ActivityDeps['settings'], 'image' | 'udpPort' | 'placement'> = {},
): Record<string, unknown> {
  const { image, udpPort, placement } = settings;
  // Only what is set: values the release does not need stay out, so they never count as drift.
  const imageValues = Object.fromEntries(Object.entries(image ?? {}).filter(([, v]) => !!v));
  return {
    tenant: { id: tenantId, plan: p.id },
    replicaCount: suspended ? 0 : p.app.replicas,
    resources: {
      requests: { cpu: p.app.requestsCpu, memory: p.app.requestsMemory },
      limits: { cpu: p.app.limitsCpu, memory: p.app.limitsMemory },
    },
    existingSecret: TENANT_SECRET_NAME,
    ...(Object.keys(imageValues).length ? { image: imageValues } : {}),
    ...(udpPort ? { udpPort } : {}),
    ...(placement?.nodeSelector && Object.keys(placement.nodeSelector).length ? { nodeSelector: placement.nodeSelector } : {}),
    ...(placement?.tolerations?.length ? { tolerations: placement.tolerations } : {}),
  };
}

export function appActivities(deps: ActivityDeps, kit: StepKit) {
  const { helm, kube, settings } = deps;
  const { plan, step, k8s } = kit;

  /** Why the release needs reinstalling, or undefined when it is as the tenant's plan wants it. */
  async function driftOf(ref: TenantRef, wanted: Record<string, unknown>): Promise<string | undefined> {
    const release = await helm.status(TENANT_RELEASE_NAME, ref.namespace);
    if (!release) return 'the release is missing';
    if (release.status !== 'deployed') return `the release is ${release.status}`;
    const values = await helm.values(TENANT_RELEASE_NAME, ref.namespace);
    if (JSON.stringify(sorted(values)) !== JSON.stringify(sorted(wanted))) return "the release's values differ from the plan's";
    const deployments = await k8s(`list Deployments in ${ref.namespace}`, () =>
      kube.list<V1Deployment>('apps/v1', 'Deployment', ref.namespace, `app.kubernetes.io/instance=${TENANT_RELEASE_NAME}`),
    );
    if (deployments.length === 0) return 'its Deployment is missing';
    const replicas = wanted.replicaCount as number;
    const scaled = deployments.find((d) => (d.spec?.replicas ?? 1) !== replicas);
    if (scaled) return `Deployment ${scaled.metadata?.name} runs ${scaled.spec?.replicas ?? 1} replicas instead of ${replicas}`;
    return undefined;
  }

  const chartValues = (tenantId: string, p: Plan, suspended: boolean) => tenantChartValues(tenantId, p, suspended, settings);

  const lockStaleSeconds = settings.helmLockStaleSeconds ?? helmWorstCaseSeconds(settings.helmTimeoutSeconds);

  /**
   * A helm killed mid-operation (worker SIGKILL, OOM, node loss) leaves the release locked in a
   * `pending-*` state, and every later upgrade fails with "another operation is in progress".
   */
  async function recoverLockedRelease(ref: TenantRef, ctx: Context): Promise<void> {
    // Helm keeps each revision in a ConfigMap labelled with its status (the worker's helm runs
    // with HELM_DRIVER=configmap): one list says whether anything is locked, without starting helm.
    const records = await k8s(`list the Helm records of ${TENANT_RELEASE_NAME} in ${ref.namespace}`, () =>
      kube.list<V1ConfigMap>('v1', 'ConfigMap', ref.namespace, `owner=helm,name=${TENANT_RELEASE_NAME}`),
    );
    if (!records.some((r) => r.metadata?.labels?.status?.startsWith('pending-'))) return;
    const recovery = await helm.recoverPending({
      release: TENANT_RELEASE_NAME,
      namespace: ref.namespace,
      timeoutSeconds: settings.helmTimeoutSeconds,
      staleAfterSeconds: lockStaleSeconds,
      signal: ctx.cancellationSignal,
    });
    if (recovery.action === 'wait') {
      throw ApplicationFailure.retryable(
        `release ${TENANT_RELEASE_NAME} in ${ref.namespace} is ${recovery.status} since ${recovery.ageSeconds} s; another helm may still be running, ` +
          `it is recovered once the lock is ${lockStaleSeconds} s old`,
        'HelmLocked',
      );
    }
    if (recovery.action !== 'none') {
      ctx.log.warn('recovered a locked Helm release', { namespace: ref.namespace, ...recovery });
    }
  }

  return {
    /** Step 7: the tenant's application, `helm upgrade --install --atomic`, heartbeating while Helm waits. */
    async deployApp(input: TenantRef & { plan: string; suspended: boolean }): Promise<{ revision: number }> {
      const p = plan(input.plan);
      const ctx = Context.current();
      return step(input.tenantId, input.suspended ? 'suspendApp' : 'deployApp', async () => {
        // On a first attempt helm itself reports a locked release ("another operation is in
        // progress", retried), and the next attempt recovers it: an install costs no extra request.
        if (ctx.info.attempt > 1) await recoverLockedRelease(input, ctx);
        const release = await helm.upgradeInstall({
          release: TENANT_RELEASE_NAME,
          namespace: input.namespace,
          chart: settings.chart,
          values: chartValues(input.tenantId, p, input.suspended),
          timeoutSeconds: settings.helmTimeoutSeconds,
          signal: ctx.cancellationSignal,
          onProgress: (elapsedMs) => ctx.heartbeat({ waitingForReadyMs: elapsedMs }),
        });
        return { revision: release.revision };
      });
    },

    async uninstallApp(input: TenantRef): Promise<boolean> {
      const ctx = Context.current();
      return step(
        input.tenantId,
        'uninstallApp',
        () =>
          helm.uninstall({
            release: TENANT_RELEASE_NAME,
            namespace: input.namespace,
            timeoutSeconds: settings.helmTimeoutSeconds,
            signal: ctx.cancellationSignal,
            onProgress: (elapsedMs) => ctx.heartbeat({ uninstallingMs: elapsedMs }),
          }),
        true,
      );
    },

    /** Whether a plan change shrinks the app first or raises the limits first (see planChangeOrder). */
    planChangeOrder(input: { from: string; to: string }): Promise<PlanChangeOrder> {
      return Promise.resolve(planChangeOrder(plan(input.from), plan(input.to)));
    },

    /**
     * Drift correction for the app: reinstalls the release when it is missing, not `deployed`,
     * deployed with other values than the tenant's, or when its Deployment was deleted or scaled
     * by hand. Returns what it did.
     */
    async reconcileApp(input: TenantRef & { plan: string; suspended: boolean }): Promise<{ action: 'unchanged' | 'reinstalled'; reason?: string }> {
      const p = plan(input.plan);
      const ctx = Context.current();
      return step(input.tenantId, 'reconcileApp', async () => {
        const wanted = chartValues(input.tenantId, p, input.suspended);
        const reason = await driftOf(input, wanted);
        if (!reason) return { action: 'unchanged' as const };
        await recoverLockedRelease(input, ctx);
        await helm.upgradeInstall({
          release: TENANT_RELEASE_NAME,
          namespace: input.namespace,
          chart: settings.chart,
          values: wanted,
          timeoutSeconds: settings.helmTimeoutSeconds,
          signal: ctx.cancellationSignal,
          onProgress: (elapsedMs) => ctx.heartbeat({ waitingForReadyMs: elapsedMs }),
        });
        return { action: 'reinstalled' as const, reason };
      });
    },
  };
}

/** JSON with object keys in a stable order, so two value trees compare by content. */
function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]));
  return v;
}
