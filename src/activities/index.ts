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
import { appActivities } from './app';
import { createStepKit, type ActivityDeps } from './common';
import { credentialsActivities } from './credentials';
import { isolationActivities } from './isolation';
import { namespaceActivities } from './namespace';
import { tenantRowActivities } from './tenant-row';

export type { ActivityDeps, TenantRef } from './common';

export function createActivities(deps: ActivityDeps) {
  const kit = createStepKit(deps);
  return {
    ...tenantRowActivities(deps, kit),
    ...namespaceActivities(deps, kit),
    ...credentialsActivities(deps, kit),
    ...appActivities(deps, kit),
    ...isolationActivities(deps, kit),
  };
}

export type Activities = ReturnType<typeof createActivities>;
