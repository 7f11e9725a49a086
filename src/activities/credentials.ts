/**
 * The tenant's credentials Secret. Credentials are generated here and go straight to the
 * Kubernetes API: they never appear in an activity's input, result, error or log line, all of
 * which Temporal stores in workflow history (visible in its Web UI).
 */
import { randomBytes } from 'node:crypto';
import { TENANT_SECRET_NAME, buildTenantSecret, generateTenantCredentials } from '../k8s/secrets';
import type { ActivityDeps, StepKit, TenantRef } from './common';

export function credentialsActivities(deps: ActivityDeps, kit: StepKit) {
  const { kube } = deps;
  const random = deps.random ?? randomBytes;
  const { step, k8s } = kit;
  return {
    /** Step 6: tenant credentials, generated here and created only when absent (never rotated by a retry). */
    async ensureSecrets(input: TenantRef & { plan: string }): Promise<{ secretName: string; created: boolean }> {
      return step(input.tenantId, 'ensureSecrets', async () => {
        // Create-if-absent, without reading first: an existing Secret answers 409 and is kept as
        // it is, and the worker needs no permission to read Secrets at all.
        const secret = buildTenantSecret({ ...input, data: generateTenantCredentials(random) });
        const created = await k8s(`create Secret ${input.namespace}/${TENANT_SECRET_NAME}`, () => kube.createIfAbsent(secret));
        return { secretName: TENANT_SECRET_NAME, created };
      });
    },

    async removeSecrets(input: TenantRef): Promise<boolean> {
      return step(
        input.tenantId,
        'removeSecrets',
        () => k8s(`delete Secret ${input.namespace}/${TENANT_SECRET_NAME}`, () =>
          kube.delete({ apiVersion: 'v1', kind: 'Secret', name: TENANT_SECRET_NAME, namespace: input.namespace })),
        true,
      );
    },
  };
}
