/** The tenant's application: a Helm release of the tenant chart in its namespace. */
import { Context } from '@temporalio/activity';
import { TENANT_SECRET_NAME } from '../k8s/secrets';
import { TENANT_RELEASE_NAME } from '../naming';
import type { Plan } from '../plans';
import type { ActivityDeps, StepKit, TenantRef } from './common';

export function appActivities(deps: ActivityDeps, kit: StepKit) {
  const { helm, settings } = deps;
  const { plan, step } = kit;

  function chartValues(tenantId: string, p: Plan, suspended: boolean): Record<string, unknown> {
    return {
      tenant: { id: tenantId, plan: p.id },
      replicaCount: suspended ? 0 : p.app.replicas,
      resources: {
        requests: { cpu: p.app.requestsCpu, memory: p.app.requestsMemory },
        limits: { cpu: p.app.limitsCpu, memory: p.app.limitsMemory },
      },
      existingSecret: TENANT_SECRET_NAME,
      ...(settings.image?.repository || settings.image?.tag
        ? { image: { ...(settings.image.repository ? { repository: settings.image.repository } : {}), ...(settings.image.tag ? { tag: settings.image.tag } : {}) } }
        : {}),
    };
  }

  return {
    /** Step 7: the tenant's application, `helm upgrade --install --atomic`, heartbeating while Helm waits. */
    async deployApp(input: TenantRef & { plan: string; suspended: boolean }): Promise<{ revision: number }> {
      const p = plan(input.plan);
      const ctx = Context.current();
      return step(input.tenantId, input.suspended ? 'suspendApp' : 'deployApp', async () => {
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
        () => helm.uninstall({ release: TENANT_RELEASE_NAME, namespace: input.namespace, timeoutSeconds: settings.helmTimeoutSeconds, signal: ctx.cancellationSignal }),
        true,
      );
    },
  };
}
