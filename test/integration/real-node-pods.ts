/**
 * Pods on the local stack's real node, as a tenant would run them under Pod Security "restricted":
 * the tenant app's image and the placement that .stack/env exports while the node runs.
 */
import type { V1Container, V1Pod, V1Toleration } from '@kubernetes/client-node';
import type { ActivityDeps } from '../../src/activities/common';
import { parseImageReference, placementSchema } from '../../src/config';

export const REAL_NODE = process.env.STACK_REAL_NODE === '1';
/** Appended to a suite's title when it is skipped, so the reason shows in the runner's summary. */
export const REAL_NODE_SKIP_REASON = REAL_NODE ? '' : ` (skipped: no real node: ${process.env.STACK_REAL_NODE_REASON || 'STACK_REAL_NODE is not 1'})`;

export const TENANT_APP_IMAGE = process.env.TENANT_IMAGE ?? 'localhost/tenant-provisioner/tenant-app:dev';
export const REAL_NODE_PLACEMENT = JSON.parse(
  process.env.TENANT_POD_PLACEMENT ??
    '{"nodeSelector":{"tenant-provisioner.dev/node-kind":"real"},"tolerations":[{"key":"tenant-provisioner.dev/real-node","operator":"Equal","value":"true","effect":"NoSchedule"}]}',
) as { nodeSelector: Record<string, string>; tolerations: V1Toleration[] };

/** The tenant app serving on the real node; `container` adds to (or replaces parts of) its container. */
export function appPod(namespace: string, name: string, labels: Record<string, string>, container: Partial<V1Container> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels },
    spec: {
      nodeSelector: REAL_NODE_PLACEMENT.nodeSelector,
      tolerations: REAL_NODE_PLACEMENT.tolerations,
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'app',
          image: TENANT_APP_IMAGE,
          imagePullPolicy: 'IfNotPresent',
          args: ['serve'],
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
          ...container,
        },
      ],
    },
  };
}

/** The worker's settings that put tenants' pods on the real node, as the worker reads them from .stack/env. */
export function realNodeSettings(): Pick<ActivityDeps['settings'], 'image' | 'placement'> {
  return { image: parseImageReference(TENANT_APP_IMAGE), placement: placementSchema.parse(REAL_NODE_PLACEMENT) };
}
