/**
 * Provisioning activities, built once per worker by `createActivities(deps)`, grouped by the
 * resource they touch: the tenant row, the namespace and its isolation objects, the credentials,
 * the app.
 *
 * Every activity is idempotent: Kubernetes objects are written with server-side apply (or created
 * only when absent), deletes treat "already gone" as success, and database writes are upserts on
 * unique keys. Each one mirrors its progress into PostgreSQL (tenant row + step log) so the status
 * API works without asking Temporal.
 *
 * Secrets: tenant credentials are generated inside `ensureSecrets` and go straight to the
 * Kubernetes API. They never appear in an activity's input, result, error or log line, all of which
 * Temporal stores in workflow history (visible in its Web UI).
 */
import { ApplicationFailure } from '@temporalio/common';
import { isOwnNamespace } from '../naming';
import { appActivities } from './app';
import { createStepKit, type ActivityDeps } from './common';
import { credentialsActivities } from './credentials';
import { isolationActivities } from './isolation';
import { namespaceActivities } from './namespace';
import { tenantRowActivities } from './tenant-row';

export type { ActivityDeps, TenantRef } from './common';

export function createActivities(deps: ActivityDeps) {
  const kit = createStepKit(deps);
  return ownNamespacesOnly({
    ...tenantRowActivities(deps, kit),
    ...namespaceActivities(deps, kit),
    ...credentialsActivities(deps, kit),
    ...appActivities(deps, kit),
    ...isolationActivities(deps, kit),
  });
}

/**
 * A workflow's input is not trusted: whoever reaches Temporal can start a tenant's workflow with a
 * namespace of its own choosing (of another tenant, or kube-system). An activity that acts on a
 * namespace refuses, before any request, one that is not this tenant's own (see `isOwnNamespace`).
 */
function ownNamespacesOnly<T extends Record<string, (input: never) => Promise<unknown>>>(activities: T): T {
  const guarded = Object.entries(activities).map(([name, fn]) => [
    name,
    async (input: unknown) => {
      const ref = input as { tenantId?: unknown; namespace?: unknown } | undefined;
      if (ref && typeof ref.namespace === 'string' && !isOwnNamespace(String(ref.tenantId), ref.namespace)) {
        throw ApplicationFailure.nonRetryable(
          `${name} refused: namespace ${JSON.stringify(ref.namespace)} is not tenant ${String(ref.tenantId)}'s own (its namespace is <prefix>-<tenant id>); the workflow was started with input that names another namespace`,
          'NamespaceNotOwned',
        );
      }
      return (fn as (i: unknown) => Promise<unknown>)(input);
    },
  ]);
  return Object.fromEntries(guarded) as T;
}

export type Activities = ReturnType<typeof createActivities>;
