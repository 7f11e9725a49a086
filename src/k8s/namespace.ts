import type { V1Namespace } from '@kubernetes/client-node';
import { isDns1123Label } from '../naming';
import { tenantLabels } from './labels';

/**
 * Pod Security Admission at "restricted" in all three modes: enforce rejects non-compliant pods,
 * while audit and warn make violations visible in the audit log and to `kubectl`/Helm users.
 * "latest" tracks the policy of the running Kubernetes version rather than pinning an old one.
 */
export const POD_SECURITY_LABELS: Readonly<Record<string, string>> = Object.freeze({
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
  'pod-security.kubernetes.io/audit': 'restricted',
  'pod-security.kubernetes.io/audit-version': 'latest',
  'pod-security.kubernetes.io/warn': 'restricted',
  'pod-security.kubernetes.io/warn-version': 'latest',
});

export function buildNamespace(input: { name: string; tenantId: string; plan: string }): V1Namespace {
  if (!isDns1123Label(input.name)) {
    throw new Error(
      `Invalid namespace name ${JSON.stringify(input.name.slice(0, 80))}: it must be a DNS-1123 label ` +
        '(at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit).',
    );
  }
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: input.name,
      // Tenant labels are spread last so that nothing can overwrite them.
      labels: { ...POD_SECURITY_LABELS, ...tenantLabels(input.tenantId, input.plan) },
    },
  };
}
